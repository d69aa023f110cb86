// Package registry holds the lock and credential registry the normalizer
// resolves vendor references with: which site and door a lock is on, and
// whose credential a vendor's user reference (a Matter user index, a Nuki auth
// id, a panel card number) is. It is bootstrapped from a file; its locks are
// kept current from the lock registry's records (Put: created, updated and
// retired through the estate API and followed from Kafka by every instance)
// and its credentials from the control plane's records (Feed). Lookups are
// safe for concurrent use.
package registry

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
)

// LockInfo places a lock.
type LockInfo struct {
	SiteID string `json:"site_id"`
	ZoneID string `json:"zone_id"`
	DoorID string `json:"door_id"`
	// LockModel and LockFirmware are the registered lock's Model and
	// Firmware, as Registry.Lock returns them (files and records keep
	// them in Lock.Model and Lock.Firmware).
	LockModel    string `json:"-"`
	LockFirmware string `json:"-"`
}

// CredentialInfo names the holder of a credential.
type CredentialInfo struct {
	SubjectID    string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	DeviceID     string `json:"device_id"`
	BreakGlass   bool   `json:"break_glass"`
	// The phone the credential is bound to, as its activation recorded it
	// (event.Device; empty when unknown): events that use the credential
	// carry these dimensions when the vendor payload does not.
	PhoneModel string `json:"phone_model,omitempty"`
	OSName     string `json:"os_name,omitempty"`
	OSVersion  string `json:"os_version,omitempty"`
	AppVersion string `json:"app_version,omitempty"`
}

// Lock is one registered lock. Groups are the door groups the lock belongs
// to (e.g. "entrance", "garage", "amenity", "service", "unit:B-204"); role
// templates grant access by door group. Model and Firmware place the lock
// in the estate's capability matrix, Tier is its door's risk tier (1 most
// critical; 0 not recorded).
type Lock struct {
	Vendor string   `json:"vendor"`
	LockID string   `json:"lock_id"`
	Groups []string `json:"groups,omitempty"`
	LockInfo
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Tier     int    `json:"tier,omitempty"`
}

// Credential maps a vendor user reference to a keyfleet credential. An empty
// LockID means the reference is valid on every lock of that vendor. Files
// may give the raw UserRef (hashed with the pseudonym key on load) or its
// UserRefHash (event.RefHash); only the hash is kept.
type Credential struct {
	Vendor      string `json:"vendor"`
	LockID      string `json:"lock_id,omitempty"`
	UserRef     string `json:"user_ref,omitempty"`
	UserRefHash string `json:"user_ref_hash,omitempty"`
	CredentialInfo
}

// File is the registry file format.
type File struct {
	Locks       []Lock       `json:"locks"`
	Credentials []Credential `json:"credentials"`
}

type lockKey struct{ vendor, lockID string }

// Registry is an in-memory registry. Credential references are held
// compactly (a fleet has tens of them per person): vendors, lock ids and
// holders' ids interned as numbers, reference hashes in binary, and one
// holder record per credential and device shared by all its references.
type Registry struct {
	mu      sync.RWMutex
	records map[lockKey]Record
	active  int
	version uint64    // counts lock changes
	creds   credTable // reference → holder
	ids     interner
	holders []holder
	holder  table // holders' indexes
	seed    maphash.Seed
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{records: map[lockKey]Record{}, seed: maphash.MakeSeed()}
}

// Apply adds or replaces the given locks and credentials (by UserRefHash).
// A file's locks are version 0 (OpFile): they replace locks from files but
// never a lock the registry API changed since.
func (r *Registry) Apply(f File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range f.Locks {
		if cur, ok := r.records[lockKey{l.Vendor, l.LockID}]; ok && cur.Version > 0 {
			continue
		}
		r.put(Record{Lock: l, Op: OpFile})
	}
	entries := make([]loadEntry, len(f.Credentials))
	for i, c := range f.Credentials {
		entries[i] = loadEntry{credEntry{r.ids.key(c.Vendor, c.LockID, c.UserRefHash), r.holderOf(c.CredentialInfo)}, uint32(i)}
	}
	r.creds.setMany(entries)
}

// holderOf returns the index of info's holder record, adding it if new.
// Holder records are not removed: a credential's (device's) references
// outlive its revocation, and a device change adds one record.
func (r *Registry) holderOf(info CredentialInfo) uint32 {
	h := holder{subject: r.ids.intern(info.SubjectID), credential: r.ids.intern(info.CredentialID),
		device: r.ids.intern(info.DeviceID), breakGlass: info.BreakGlass,
		phoneModel: r.ids.intern(info.PhoneModel), osName: r.ids.intern(info.OSName),
		osVersion: r.ids.intern(info.OSVersion), appVersion: r.ids.intern(info.AppVersion)}
	hash := maphash.Comparable(r.seed, h)
	if i, ok := r.holder.find(hash, func(i uint32) bool { return r.holders[i] == h }); ok {
		return i
	}
	i := uint32(len(r.holders))
	r.holders = append(r.holders, h)
	r.holder.insert(hash, i, func(i uint32) uint64 { return maphash.Comparable(r.seed, r.holders[i]) })
	return i
}

func (r *Registry) info(i uint32) CredentialInfo {
	h := r.holders[i]
	return CredentialInfo{SubjectID: r.ids.text(h.subject), CredentialID: r.ids.text(h.credential),
		DeviceID: r.ids.text(h.device), BreakGlass: h.breakGlass,
		PhoneModel: r.ids.text(h.phoneModel), OSName: r.ids.text(h.osName),
		OSVersion: r.ids.text(h.osVersion), AppVersion: r.ids.text(h.appVersion)}
}

// Put applies a lock record unless the registry holds a newer version of
// the lock (Version; equal versions from files replace each other), and
// reports whether it did. A retired lock keeps resolving for the normalizer
// (Lock) but is no longer one of Locks.
func (r *Registry) Put(rec Record) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.records[lockKey{rec.Vendor, rec.LockID}]; ok && (cur.Version > rec.Version || cur.Version == rec.Version && rec.Version > 0) {
		return false
	}
	r.put(rec)
	return true
}

func (r *Registry) put(rec Record) {
	k := lockKey{rec.Vendor, rec.LockID}
	if cur, ok := r.records[k]; ok && !cur.Retired {
		r.active--
	}
	rec.Groups = slices.Clone(rec.Groups)
	r.records[k] = rec
	if !rec.Retired {
		r.active++
	}
	r.version++
}

// Get returns a lock's current record (retired ones too).
func (r *Registry) Get(vendor, lockID string) (Record, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, ok := r.records[lockKey{vendor, lockID}]
	return rec, ok
}

// Version counts the lock changes the registry has applied: a caller that
// caches what it derived from Locks rebuilds when it moves.
func (r *Registry) Version() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.version
}

// RemoveCredential forgets a vendor user reference (by hash).
func (r *Registry) RemoveCredential(vendor, lockID, refHash string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.ids.lookupKey(vendor, lockID, refHash); ok {
		r.creds.del(k)
	}
}

// Lock returns where a lock is installed (for the normalizer; a retired
// lock still says where it was, so its late events keep their door).
func (r *Registry) Lock(vendor, lockID string) (LockInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	l, ok := r.records[lockKey{vendor, lockID}]
	info := l.LockInfo
	info.LockModel, info.LockFirmware = l.Model, l.Firmware
	return info, ok
}

// Credential returns whose credential a vendor user reference is (for the normalizer): a lock-specific mapping wins over
// a vendor-wide one.
func (r *Registry) Credential(vendor, lockID, refHash string) (CredentialInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if k, ok := r.ids.lookupKey(vendor, lockID, refHash); ok {
		if i, ok := r.creds.get(k); ok {
			return r.info(i), true
		}
	}
	if k, ok := r.ids.lookupKey(vendor, "", refHash); ok {
		if i, ok := r.creds.get(k); ok {
			return r.info(i), true
		}
	}
	return CredentialInfo{}, false
}

// Len returns the number of locks in service (not retired) and of
// credential references held.
func (r *Registry) Len() (locks, credentials int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.active, r.creds.n
}

// Locks returns every lock in service (not retired), sorted by vendor and
// lock id.
func (r *Registry) Locks() []Lock {
	r.mu.RLock()
	out := make([]Lock, 0, r.active)
	for _, rec := range r.records {
		if !rec.Retired {
			out = append(out, rec.Lock)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Lock) int {
		return cmp.Or(cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.LockID, b.LockID))
	})
	return out
}

// Records returns every lock's current record, retired ones too, sorted by
// vendor and lock id.
func (r *Registry) Records() []Record {
	r.mu.RLock()
	out := make([]Record, 0, len(r.records))
	for _, rec := range r.records {
		out = append(out, rec)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.LockID, b.LockID))
	})
	return out
}

// Matching returns the locks in service that a credential of a site's door
// groups reaches ("*" = every door group; an empty site, or a lock without
// a site, matches any site), sorted by vendor and lock id: the control
// plane's lock index answers the same.
func (r *Registry) Matching(site string, groups []string) []Lock {
	var out []Lock
	for _, l := range r.Locks() {
		if site != "" && l.SiteID != "" && l.SiteID != site {
			continue
		}
		for _, g := range groups {
			if g == "*" || slices.Contains(l.Groups, g) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}
