package fleet

import (
	"strconv"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// PINDevice is the device index of a keypad code (no phone).
const PINDevice = -1

// ref is one vendor identity of a credential on one device.
type ref struct {
	vendor, lockID, userRef string
}

// refs lists the vendor identities of credential c on device d (PINDevice
// for its keypad code). Matter user indexes are per lock; every other
// vendor's reference is valid on all of that vendor's locks.
func (f *Fleet) refs(c, d int) []ref {
	cred := &f.Credentials[c]
	vendors := f.siteVendors(cred.Site)
	var out []ref
	if d == PINDevice && !cred.HasPIN {
		return nil
	}
	for _, v := range event.Vendors {
		if !vendors[v] {
			continue
		}
		switch v {
		case "matter":
			idx := 0
			if d == PINDevice {
				idx = cred.PIN.MatterUser
			} else {
				idx = cred.Devices[d].MatterUser
			}
			for _, l := range f.access[c] {
				if f.Locks[l].Vendor == "matter" {
					out = append(out, ref{"matter", f.Locks[l].LockID, strconv.Itoa(idx)})
				}
			}
		default:
			if r := f.UserRef(c, d, v); r != "" {
				out = append(out, ref{v, "", r})
			}
		}
	}
	return out
}

// UserRef returns the raw reference the locks of vendor know credential c's
// device d by (PINDevice: its keypad code); for Matter the user index, which
// is the same on every lock of the credential's site.
func (f *Fleet) UserRef(c, d int, vendor string) string {
	cred := &f.Credentials[c]
	if d == PINDevice {
		if !cred.HasPIN {
			return ""
		}
		switch vendor {
		case "matter":
			return strconv.Itoa(cred.PIN.MatterUser)
		case "nuki":
			return cred.PIN.NukiAuth
		case "schlage":
			return cred.PIN.SchlageCode
		case "seam":
			return cred.PIN.SeamCode
		case "legacy":
			return cred.PIN.LegacyNumber
		}
		return ""
	}
	dev := &cred.Devices[d]
	switch vendor {
	case "matter":
		return strconv.Itoa(dev.MatterUser)
	case "nuki":
		return dev.NukiAuth
	case "schlage":
		return dev.SchlageUser
	case "seam":
		return dev.SeamIdentity
	case "legacy":
		return dev.Card
	}
	return ""
}

func (f *Fleet) siteVendors(site int) map[string]bool {
	out := map[string]bool{}
	for _, l := range f.Sites[site].Locks {
		out[f.Locks[l].Vendor] = true
	}
	return out
}

// Registry returns the lock and credential registry of the fleet in
// internal/registry's file format, with raw user references (the registry
// hashes them with the pseudonym key on load). Every device a credential can
// ever be bound to is listed, so events of later device changes resolve.
// At a million people that is tens of millions of references: writers of
// the file stream them (RegistryLocks, EachRegistryCredential) instead.
func (f *Fleet) Registry() registry.File {
	file := registry.File{Locks: f.RegistryLocks()}
	f.EachRegistryCredential(func(c registry.Credential) { file.Credentials = append(file.Credentials, c) })
	return file
}

// RegistryLocks returns the locks of Registry.
func (f *Fleet) RegistryLocks() []registry.Lock {
	var out []registry.Lock
	for i := range f.Locks {
		l := &f.Locks[i]
		out = append(out, registry.Lock{
			Vendor: l.Vendor, LockID: l.LockID, Groups: l.Groups,
			LockInfo: registry.LockInfo{SiteID: l.SiteID, ZoneID: l.ZoneID, DoorID: l.DoorID},
			Model:    l.Model, Firmware: l.Firmware, Tier: l.Tier,
		})
	}
	return out
}

// EachRegistryCredential calls fn with each credential reference of
// Registry, in its order.
func (f *Fleet) EachRegistryCredential(fn func(registry.Credential)) {
	for c := range f.Credentials {
		cred := &f.Credentials[c]
		subject := f.Subjects[cred.Subject].ID
		for d := PINDevice; d < len(cred.Devices); d++ {
			device, ph := "", event.Device{}
			if d >= 0 {
				device, ph = cred.Devices[d].ID, cred.Devices[d].Phone
			}
			for _, r := range f.refs(c, d) {
				fn(registry.Credential{
					Vendor: r.vendor, LockID: r.lockID, UserRef: r.userRef,
					CredentialInfo: registry.CredentialInfo{
						SubjectID: subject, CredentialID: cred.ID, DeviceID: device, BreakGlass: cred.BreakGlass,
						PhoneModel: ph.PhoneModel, OSName: ph.OSName, OSVersion: ph.OSVersion, AppVersion: ph.AppVersion,
					},
				})
			}
		}
	}
}

// Refs returns credential c's identities on device d (and its keypad code,
// if it has one) in the keyed pseudonymous form of credential records.
func (f *Fleet) Refs(key []byte, c, d int) []event.CredentialRef {
	devices := []int{PINDevice}
	if d != PINDevice {
		devices = []int{d, PINDevice}
	}
	var out []event.CredentialRef
	for _, dev := range devices {
		for _, r := range f.refs(c, dev) {
			out = append(out, event.CredentialRef{Vendor: r.vendor, LockID: r.lockID,
				UserRefHash: event.RefHash(key, r.vendor, r.userRef)})
		}
	}
	return out
}

// Record returns a credential lifecycle record for credential c bound to
// device d, with its identities.
func (f *Fleet) Record(key []byte, c, d int, state string, attested bool, tsMs int64) event.Credential {
	cred := &f.Credentials[c]
	rec := event.Credential{
		Record:       "credential",
		CredentialID: cred.ID,
		SubjectID:    f.Subjects[cred.Subject].ID,
		State:        state,
		Role:         cred.Role,
		SiteID:       f.Sites[cred.Site].ID,
		TsMs:         tsMs,
		BreakGlass:   cred.BreakGlass,
		Actor:        "simulator",
	}
	if d >= 0 && d < len(cred.Devices) {
		rec.DeviceID = cred.Devices[d].ID
		rec.Attested = attested
		if state == event.StateActive {
			ph := cred.Devices[d].Phone
			rec.Device = &ph
		}
	}
	if state == event.StateIssued || state == event.StateActive {
		rec.Refs = f.Refs(key, c, d)
	}
	return rec
}
