package fleet

import (
	"math/rand/v2"

	"github.com/keyfleet/keyfleet/internal/event"
)

// A phone model of the simulated fleet, with the OS versions it runs (older
// first) and its share of phones.
type phoneModel struct {
	model, os string
	versions  []string
	weight    float64
}

// phoneModels is the simulated fleet's phone mix: roughly the iOS/Android
// split of a European residential estate in late 2026.
var phoneModels = []phoneModel{
	{"iPhone 13", "ios", []string{"17.6", "18.1", "18.2"}, 0.10},
	{"iPhone 14", "ios", []string{"18.1", "18.2"}, 0.12},
	{"iPhone 15", "ios", []string{"18.1", "18.2"}, 0.16},
	{"iPhone 16", "ios", []string{"18.2"}, 0.14},
	{"Pixel 8", "android", []string{"15", "16"}, 0.08},
	{"Pixel 9", "android", []string{"16"}, 0.07},
	{"Galaxy S23", "android", []string{"14", "15"}, 0.09},
	{"Galaxy S24", "android", []string{"15", "16"}, 0.10},
	{"Galaxy A54", "android", []string{"14", "15"}, 0.14},
}

// appVersions are the wallet/app versions in the field, older first.
var appVersions = []string{"2026.10.2", "2026.11.0", "2026.11.1"}

// NewPhone is what a credential's spare phones (the phones people switch to
// during a run) are: the newest model, on an OS point release no phone of
// the base estate runs, so the version first appears at the first device
// switch. (The planted regression, sim.Regression, is an update of phones
// in use to another version.)
var NewPhone = event.Device{PhoneModel: "iPhone 17", OSName: "ios", OSVersion: "18.3", AppVersion: "2026.11.1",
	Facts: event.DeviceAppReported}

// phone returns what credential c's device d reports of itself: a draw from
// the phone mix for the phone a credential is issued on (d == 0), NewPhone
// for its spare phones. It draws from its own stream, so adding it changed
// no other draw of the fleet.
func phone(seed uint64, c, d int) event.Device {
	if d > 0 {
		return NewPhone
	}
	r := rng(seed, "phones", c)
	m := pickPhone(r)
	dev := event.Device{PhoneModel: m.model, OSName: m.os, Facts: event.DeviceAppReported,
		OSVersion: m.versions[r.IntN(len(m.versions))], AppVersion: appVersions[weighted(r, []float64{0.1, 0.3, 0.6})]}
	if m.os == "android" && r.Float64() < 0.7 {
		dev.Facts = event.DeviceAttested // Android key attestation proved the OS version
	}
	return dev
}

func pickPhone(r *rand.Rand) phoneModel {
	w := make([]float64, len(phoneModels))
	for i, m := range phoneModels {
		w[i] = m.weight
	}
	return phoneModels[weighted(r, w)]
}

// weighted picks an index by weight.
func weighted(r *rand.Rand, w []float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	x := r.Float64() * total
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}
