// Package registry holds the lock and credential registry the normalizer
// resolves vendor references with: which site and door a lock is on, and
// whose credential a vendor's user reference (a Matter user index, a Nuki auth
// id, a panel card number) is. It is loaded from a file and kept current by
// the control plane; lookups are safe for concurrent use.
package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/keyfleet/keyfleet/internal/event"
)

// LockInfo places a lock.
type LockInfo struct {
	SiteID string `json:"site_id"`
	ZoneID string `json:"zone_id"`
	DoorID string `json:"door_id"`
}

// CredentialInfo names the holder of a credential.
type CredentialInfo struct {
	SubjectID    string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	DeviceID     string `json:"device_id"`
	BreakGlass   bool   `json:"break_glass"`
}

// Lock is one registered lock. Groups are the door groups the lock belongs
// to (e.g. "entrance", "garage", "amenity", "service", "unit:B-204"); role
// templates grant access by door group.
type Lock struct {
	Vendor string   `json:"vendor"`
	LockID string   `json:"lock_id"`
	Groups []string `json:"groups,omitempty"`
	LockInfo
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
type credKey struct{ vendor, lockID, refHash string }

// Registry is an in-memory registry.
type Registry struct {
	mu    sync.RWMutex
	all   map[lockKey]Lock
	locks map[lockKey]LockInfo
	creds map[credKey]CredentialInfo
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{all: map[lockKey]Lock{}, locks: map[lockKey]LockInfo{}, creds: map[credKey]CredentialInfo{}}
}

// Load reads a registry file (JSON, see File); raw user references in it are
// hashed with key.
func Load(path string, key []byte) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse registry %s: %w", path, err)
	}
	for i, c := range f.Credentials {
		if c.UserRefHash == "" {
			if c.UserRef == "" {
				return nil, fmt.Errorf("registry %s: credential %d has neither user_ref nor user_ref_hash", path, i)
			}
			f.Credentials[i].UserRefHash = event.RefHash(key, c.Vendor, c.UserRef)
		}
		f.Credentials[i].UserRef = ""
	}
	r := New()
	r.Apply(f)
	return r, nil
}

// Apply adds or replaces the given locks and credentials (by UserRefHash).
func (r *Registry) Apply(f File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range f.Locks {
		r.locks[lockKey{l.Vendor, l.LockID}] = l.LockInfo
		r.all[lockKey{l.Vendor, l.LockID}] = l
	}
	for _, c := range f.Credentials {
		r.creds[credKey{c.Vendor, c.LockID, c.UserRefHash}] = c.CredentialInfo
	}
}

// RemoveCredential forgets a vendor user reference (by hash).
func (r *Registry) RemoveCredential(vendor, lockID, refHash string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.creds, credKey{vendor, lockID, refHash})
}

// Lock returns where a lock is installed (for the normalizer).
func (r *Registry) Lock(vendor, lockID string) (LockInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	l, ok := r.locks[lockKey{vendor, lockID}]
	return l, ok
}

// Credential returns whose credential a vendor user reference is (for the normalizer): a lock-specific mapping wins over
// a vendor-wide one.
func (r *Registry) Credential(vendor, lockID, refHash string) (CredentialInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c, ok := r.creds[credKey{vendor, lockID, refHash}]; ok {
		return c, true
	}
	c, ok := r.creds[credKey{vendor, "", refHash}]
	return c, ok
}

// Len returns the number of locks and credentials held.
func (r *Registry) Len() (locks, credentials int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.locks), len(r.creds)
}

// Locks returns every registered lock.
func (r *Registry) Locks() []Lock {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Lock, 0, len(r.all))
	for _, l := range r.all {
		out = append(out, l)
	}
	return out
}
