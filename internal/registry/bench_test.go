package registry_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// fleetFile is a registry file shaped like the simulator's (sim/fleet): per
// subject two credentials, each known on three devices (a keypad code and
// two phones) by one Nuki, one Seam and one legacy reference and by its user
// index on each of eight Matter locks of its site.
func fleetFile(subjects int) (registry.File, []event.Credential) {
	key := []byte("bench-pseudonym-key")
	var f registry.File
	var recs []event.Credential
	for s := range subjects {
		subject := fmt.Sprintf("subj-%06d", s+1)
		site := s / 400
		for c := range 2 {
			cred := fmt.Sprintf("cred-%06d", 2*s+c+1)
			for d := range 3 {
				device := fmt.Sprintf("%08x-1c2b-4d3e-8f90-%012x", 3*(2*s+c)+d, s)
				rec := event.Credential{CredentialID: cred, SubjectID: subject, DeviceID: device, State: event.StateActive}
				add := func(vendor, lockID, ref string) {
					h := event.RefHash(key, vendor, ref)
					f.Credentials = append(f.Credentials, registry.Credential{Vendor: vendor, LockID: lockID, UserRefHash: h,
						CredentialInfo: registry.CredentialInfo{SubjectID: subject, CredentialID: cred, DeviceID: device}})
					rec.Refs = append(rec.Refs, event.CredentialRef{Vendor: vendor, LockID: lockID, UserRefHash: h})
				}
				for _, v := range []string{"nuki", "seam", "legacy"} {
					add(v, "", fmt.Sprintf("%s-%d-%d-%d", v, s, c, d))
				}
				for l := range 8 {
					add("matter", fmt.Sprintf("0x%016X/%d", site*40+l, l%3+1), fmt.Sprint(3*(2*s+c)+d))
				}
				if d == 2 {
					recs = append(recs, rec) // the record of the credential's current device
				}
			}
		}
	}
	return f, recs
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCredentials loads a fleet's credential references (the file,
// then every credential's record through the feed, as serve does) and
// reports the registry's live heap per subject.
func BenchmarkCredentials(b *testing.B) {
	const subjects = 20000
	file, recs := fleetFile(subjects)
	b.ReportAllocs()
	b.ResetTimer()
	var perSubject float64
	for range b.N {
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		r := registry.New()
		r.Apply(file)
		feed := registry.NewFeed(r)
		for _, rec := range recs {
			feed.Replace(nil, rec) // as the control plane's view feeds it
		}
		b.StopTimer()
		perSubject = float64(liveHeap()-before) / subjects
		runtime.KeepAlive(r)
		runtime.KeepAlive(feed)
		b.StartTimer()
	}
	b.ReportMetric(perSubject, "live-B/subject")
}

// BenchmarkCredentialLookup resolves references as the normalizer does.
func BenchmarkCredentialLookup(b *testing.B) {
	file, _ := fleetFile(2000)
	r := registry.New()
	r.Apply(file)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := &file.Credentials[(i*7919)%len(file.Credentials)]
		if _, ok := r.Credential(c.Vendor, c.LockID, c.UserRefHash); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkLoad loads a registry file shaped like the simulator's (raw user
// references, hashed on load) and reports the registry's live heap per
// subject after it.
func BenchmarkLoad(b *testing.B) {
	const subjects = 20000
	f, _ := fleetFile(subjects)
	for i := range f.Credentials {
		c := &f.Credentials[i]
		c.UserRef, c.UserRefHash = c.UserRefHash[:24], "" // raw references, as the simulator writes them
	}
	path := filepath.Join(b.TempDir(), "registry.json")
	data, err := json.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	f, data = registry.File{}, nil
	key := []byte("bench-pseudonym-key")
	b.ReportAllocs()
	b.ResetTimer()
	var perSubject float64
	for range b.N {
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		r, err := registry.Load(path, key)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		perSubject = float64(liveHeap()-before) / subjects
		runtime.KeepAlive(r)
		b.StartTimer()
	}
	b.ReportMetric(perSubject, "live-B/subject")
}
