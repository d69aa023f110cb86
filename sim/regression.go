package sim

import (
	"hash/fnv"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/sim/locks"
	"github.com/keyfleet/keyfleet/sim/payload"
)

// Regression is the planted regression (issue 19): from AtMs an OS update
// rolls out to a Share of the iPhones in use (each phone's wallet app
// reports the new version in a credential record, spread over RolloutMs),
// and from its update on a phone on that version is refused by every lock
// on Firmware — "everyone on the new iOS can't open the Nuki entrances".
// The regression detector should find it by os_version (and lock_firmware).
type Regression struct {
	// Off plants nothing (NoAnomalies does too).
	Off bool
	// AtMs is when the rollout starts (0: the middle of the window, or an
	// hour after the start of an open-ended run).
	AtMs int64
	// RolloutMs spreads the updates (default 6 hours).
	RolloutMs int64
	// Share of the iPhones updated (default 0.5).
	Share float64
	// OSVersion is the new iOS version (default "18.4").
	OSVersion string
	// Firmware is the lock firmware that refuses it (default "4.2.1": the
	// simulated Nuki Smart Lock 4 Pro at entrances).
	Firmware string
}

func (r *Regression) defaults(o *Options) {
	if r.AtMs == 0 {
		switch {
		case o.EndMs > o.StartMs:
			r.AtMs = o.StartMs + (o.EndMs-o.StartMs)/2
		default:
			r.AtMs = o.StartMs + 60*60*1000
		}
	}
	if r.RolloutMs <= 0 {
		r.RolloutMs = 6 * 60 * 60 * 1000
	}
	if r.Share <= 0 {
		r.Share = 0.5
	}
	if r.OSVersion == "" {
		r.OSVersion = "18.4"
	}
	if r.Firmware == "" {
		r.Firmware = "4.2.1"
	}
}

// regressionState is the planted regression as the run goes.
type regressionState struct {
	plant   Regression
	started bool
	// updated is when each credential's phone got the new version (0: not).
	updated []int64
}

// picks picks a credential's phone for the update: a hash of its id
// below the share (no random stream is drawn).
func (p *Regression) picks(credID string) bool {
	h := fnv.New32a()
	h.Write([]byte("os-update/" + credID))
	return float64(h.Sum32())/float64(1<<32) < p.Share
}

// rollout, once the run reaches the plant's start, records the OS update of
// each picked credential's current iPhone: a credential record (state
// unchanged, the new OS version in its device) spread over the rollout.
func (s *Simulator) rollout(t int64) {
	g := &s.regression
	if g.plant.Off || g.started || t < g.plant.AtMs {
		return
	}
	g.started = true
	f := s.f
	for c := range f.Credentials {
		cred := &f.Credentials[c]
		if s.state[c] != event.StateActive || !g.plant.picks(cred.ID) {
			continue
		}
		dev := s.curDevice(c)
		if dev < 0 || dev >= len(cred.Devices) || cred.Devices[dev].Phone.OSName != "ios" {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(cred.ID))
		at := g.plant.AtMs + int64(h.Sum64()%uint64(g.plant.RolloutMs))
		g.updated[c] = at
		rec := f.Record(s.o.PseudonymKey, c, dev, event.StateActive, true, at)
		rec.Reason = "os update"
		s.updatedDevice(c, &rec)
		s.push(pendingRecord{ts: at, cred: &rec})
		s.stats.OSUpdates++
	}
}

// updatedDevice applies a credential's OS update to a record it is part of
// (later records of the credential keep the version the phone reports).
func (s *Simulator) updatedDevice(c int, rec *event.Credential) {
	if at := s.regression.updated[c]; at > 0 && rec.TsMs >= at && rec.Device != nil && rec.Device.OSName == "ios" &&
		rec.DeviceID == s.f.Credentials[c].Devices[s.curDevice(c)].ID {
		d := *rec.Device
		d.OSVersion = s.regression.plant.OSVersion
		rec.Device = &d
	}
}

// regressed reports whether the planted regression refuses credential c's
// phone (device dev, not a keypad code) at lock l at t.
func (s *Simulator) regressed(c, dev int, l int, t int64) bool {
	g := &s.regression
	if c < 0 || dev < 0 || g.plant.Off {
		return false
	}
	at := g.updated[c]
	return at > 0 && t >= at && dev == s.curDevice(c) && s.f.Locks[l].Firmware == g.plant.Firmware
}

// regressionDecision is what a lock on the planted firmware answers an
// updated phone: refused, reason unknown (it holds the key).
var regressionDecision = locks.Decision{Reason: payload.ReasonUnknown}
