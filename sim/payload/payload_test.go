package payload_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/payload"
)

var update = flag.Bool("update", false, "rewrite golden files")

var key = []byte("payload-test-pseudonym-key")

// allOps lists every occurrence kind with the methods it is made with.
var allOps = []struct {
	op      payload.Op
	methods []string
	reason  string
}{
	{payload.OpUnlock, []string{payload.MethodAliro, payload.MethodPhoneBLE, payload.MethodWallet, payload.MethodAppRemote,
		payload.MethodPIN, payload.MethodCard, payload.MethodButton, payload.MethodManual}, ""},
	{payload.OpUnlatch, []string{payload.MethodAliro, payload.MethodPhoneBLE, payload.MethodPIN, payload.MethodCard}, ""},
	{payload.OpLock, []string{payload.MethodAuto, payload.MethodButton, payload.MethodManual, payload.MethodSchedule}, ""},
	{payload.OpDenied, []string{payload.MethodAliro, payload.MethodPhoneBLE, payload.MethodPIN, payload.MethodCard}, payload.ReasonInvalid},
	{payload.OpDenied, []string{payload.MethodPIN, payload.MethodCard, payload.MethodAliro}, payload.ReasonRevoked},
	{payload.OpDenied, []string{payload.MethodPIN, payload.MethodCard, payload.MethodAliro}, payload.ReasonExpired},
	{payload.OpDenied, []string{payload.MethodPIN, payload.MethodCard, payload.MethodAliro}, payload.ReasonSchedule},
	{payload.OpDoorOpened, []string{""}, ""},
	{payload.OpDoorClosed, []string{""}, ""},
	{payload.OpDoorForced, []string{""}, ""},
	{payload.OpDoorAjar, []string{""}, ""},
	{payload.OpJammed, []string{""}, ""},
	{payload.OpTamper, []string{""}, ""},
	{payload.OpBatteryLow, []string{""}, ""},
	{payload.OpOffline, []string{""}, ""},
	{payload.OpOnline, []string{""}, ""},
	{payload.OpUserAdded, []string{""}, ""},
	{payload.OpUserRemoved, []string{""}, ""},
	{payload.OpKeypadLockout, []string{""}, ""},
}

// wantAction is the common-schema action each occurrence must become.
var wantAction = map[payload.Op][]string{
	payload.OpUnlock:        {"unlock"},
	payload.OpUnlatch:       {"unlatch", "unlock"}, // vendors without a latch report an unlock
	payload.OpLock:          {"lock"},
	payload.OpDenied:        {"access_denied"},
	payload.OpDoorOpened:    {"door_opened"},
	payload.OpDoorClosed:    {"door_closed"},
	payload.OpDoorForced:    {"door_forced"},
	payload.OpDoorAjar:      {"door_ajar"},
	payload.OpJammed:        {"lock_jammed", "lock"}, // Nuki: a lock that failed with "motor blocked"
	payload.OpTamper:        {"tamper"},
	payload.OpBatteryLow:    {"battery_low"},
	payload.OpOffline:       {"offline"},
	payload.OpOnline:        {"online"},
	payload.OpUserAdded:     {"credential_added"},
	payload.OpUserRemoved:   {"credential_removed"},
	payload.OpKeypadLockout: {"access_denied"},
}

func testFleet(t *testing.T) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Options{Seed: 11, Sites: 2, DoorsPerSite: 60, Subjects: 120,
		VendorMix: map[string]float64{"matter": 1, "nuki": 1, "schlage": 1, "seam": 1, "legacy": 1}, SpareDevices: 1})
	require.NoError(t, err)
	return f
}

func resolver(f *fleet.Fleet) *registry.Registry {
	file := f.Registry()
	for i := range file.Credentials {
		c := &file.Credentials[i]
		c.UserRefHash, c.UserRef = event.RefHash(key, c.Vendor, c.UserRef), ""
	}
	r := registry.New()
	r.Apply(file)
	return r
}

// TestEveryPayloadNormalizes renders every occurrence kind, with every
// method, at a lock of every vendor, and runs it through keyfleet's own
// normalizer: vendors with an adapter must accept every payload, map it to
// the intended action and outcome, and resolve the person to the subject
// and credential the simulation meant.
func TestEveryPayloadNormalizes(t *testing.T) {
	f := testFleet(t)
	n := normalize.New(vendors.Adapters(), resolver(f), key)
	enc := payload.NewEncoder(1)
	covered := map[string]int{}
	for _, vendor := range event.Vendors {
		var lock *fleet.Lock
		cred := -1
		for i := range f.Locks {
			if f.Locks[i].Vendor == vendor && len(f.ACL(i)) > 0 {
				lock, cred = &f.Locks[i], f.ACL(i)[0]
				break
			}
		}
		require.NotNil(t, lock, "no %s lock with an access list", vendor)
		if !n.Has(vendor) {
			t.Logf("vendor %s has no adapter in this build: its payloads are checked once it does", vendor)
			continue
		}
		c := &f.Credentials[cred]
		subject := f.Subjects[c.Subject].ID
		ts := int64(1_795_000_000_123)
		for _, tc := range allOps {
			for _, method := range tc.methods {
				for _, withUser := range []bool{true, false} {
					occ := payload.Occurrence{Lock: lock, TsMs: ts, Op: tc.op, Method: method, Reason: tc.reason,
						Battery: 12, ReceivedMs: ts + 400, UserName: "Anna Keller"}
					dev := 0
					if method == payload.MethodPIN {
						dev = fleet.PINDevice
					}
					userOp := tc.op <= payload.OpDenied || tc.op == payload.OpUserAdded || tc.op == payload.OpUserRemoved
					if withUser && userOp && method != payload.MethodAuto && method != payload.MethodButton && method != payload.MethodManual && method != payload.MethodSchedule &&
						(tc.op != payload.OpDenied || payload.NamesUser(vendor, tc.reason)) {
						occ.UserRef = f.UserRef(cred, dev, vendor)
					}
					if !withUser && occ.UserRef == "" && tc.op > payload.OpDenied {
						continue // the same case as withUser
					}
					raw, ok := enc.Encode(nil, &occ)
					if !ok {
						require.False(t, payload.Reported(&occ))
						continue
					}
					name := fmt.Sprintf("%s/%s/%s/%s/user=%v", vendor, tc.op, method, tc.reason, occ.UserRef != "")
					events, err := n.Normalize(nil, vendor, ts+500, "", raw)
					require.NoError(t, err, "%s: %s", name, raw)
					require.Len(t, events, 1, "%s: %s", name, raw)
					e := events[0]
					require.Contains(t, wantAction[tc.op], e.Action, "%s: %s", name, raw)
					require.Equal(t, lock.LockID, e.LockID, name)
					require.Equal(t, lock.DoorID, e.DoorID, name)
					require.Equal(t, lock.SiteID, e.SiteID, name)
					switch tc.op {
					case payload.OpUnlock, payload.OpUnlatch:
						require.Equal(t, "granted", e.Outcome, name)
					case payload.OpDenied:
						require.Equal(t, "denied", e.Outcome, name)
					}
					if occ.UserRef != "" && tc.op <= payload.OpDenied {
						require.Equal(t, subject, e.SubjectID, "%s: %s", name, raw)
						require.Equal(t, c.ID, e.CredentialID, name)
					}
					if occ.UserRef == "" {
						require.Empty(t, e.SubjectID, name)
					}
					require.NotContains(t, string(e.AppendJSON(nil)), "Anna", "names never reach the event store")
					covered[vendor]++
				}
			}
		}
	}
	t.Logf("payloads checked per vendor: %v", covered)
}

// TestGolden keeps one rendered example of each occurrence per vendor in
// testdata/payloads.golden (refresh with -update): the exact shapes the
// simulator sends.
func TestGolden(t *testing.T) {
	f := testFleet(t)
	enc := payload.NewEncoder(1)
	var out bytes.Buffer
	for _, vendor := range event.Vendors {
		var lock *fleet.Lock
		cred := -1
		for i := range f.Locks {
			if f.Locks[i].Vendor == vendor && len(f.ACL(i)) > 0 {
				lock, cred = &f.Locks[i], f.ACL(i)[0]
				break
			}
		}
		for _, tc := range allOps {
			method := tc.methods[0]
			occ := payload.Occurrence{Lock: lock, TsMs: 1_795_000_000_123, Op: tc.op, Method: method, Reason: tc.reason,
				Battery: 12, ReceivedMs: 1_795_000_000_523, UserName: "Anna Keller"}
			if tc.op <= payload.OpDenied && method != payload.MethodAuto && (tc.op != payload.OpDenied || payload.NamesUser(vendor, tc.reason)) {
				occ.UserRef = f.UserRef(cred, 0, vendor)
			}
			raw, ok := enc.Encode(nil, &occ)
			if !ok {
				continue
			}
			fmt.Fprintf(&out, "%s %s %s %s\n%s\n\n", vendor, tc.op, method, tc.reason, raw)
		}
	}
	path := filepath.Join("testdata", "payloads.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create %s", path)
	require.Equal(t, string(want), out.String())
}

func TestEncodeIsDeterministic(t *testing.T) {
	f := testFleet(t)
	render := func() []byte {
		enc := payload.NewEncoder(5)
		var all []byte
		for i := range f.Locks {
			occ := payload.Occurrence{Lock: &f.Locks[i], TsMs: 1_795_000_000_000 + int64(i), Op: payload.OpUnlock,
				Method: payload.PhoneMethods[f.Locks[i].Vendor][0]}
			all, _ = enc.Encode(all, &occ)
		}
		return all
	}
	require.Equal(t, render(), render())
}
