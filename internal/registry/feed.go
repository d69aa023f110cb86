package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Feed keeps a Registry's credential mappings current from credential
// lifecycle records (credential.events): each record's Refs become the
// credential's vendor identities, replacing those of its previous record.
// Mappings stay after revocation and archiving, so an event that uses a
// revoked credential still resolves to it (use-after-revocation). Every
// keyfleet serve instance feeds its own registry from every partition.
type Feed struct {
	r    *Registry
	mu   sync.Mutex
	refs map[uint32][]credKey // credential id (interned) → refs applied
}

// NewFeed returns a feed into r.
func NewFeed(r *Registry) *Feed {
	return &Feed{r: r, refs: map[uint32][]credKey{}}
}

// Apply applies one lifecycle record.
func (f *Feed) Apply(c event.Credential) {
	if c.CredentialID == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.ids.intern(c.CredentialID)
	keys := r.apply(f.refs[id], c)
	if len(keys) == 0 {
		delete(f.refs, id)
	} else {
		f.refs[id] = keys
	}
}

// Replace applies one lifecycle record whose credential's previous record
// had the references prev: a caller that keeps every credential's newest
// record (the control plane's view) saves the feed keeping their copies.
// Records of one credential go through either Apply or Replace, not both.
func (f *Feed) Replace(prev []event.CredentialRef, c event.Credential) {
	if c.CredentialID == "" {
		return
	}
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	old := make([]credKey, len(prev))
	for i, ref := range prev {
		old[i] = r.ids.key(ref.Vendor, ref.LockID, ref.UserRefHash)
	}
	r.apply(old, c)
}

// apply replaces the references old (keys) by c's and returns c's keys
// (callers hold r.mu).
func (r *Registry) apply(old []credKey, c event.Credential) []credKey {
	keys := make([]credKey, len(c.Refs))
	for i, ref := range c.Refs {
		keys[i] = r.ids.key(ref.Vendor, ref.LockID, ref.UserRefHash)
	}
	for _, k := range old {
		if !slices.Contains(keys, k) {
			r.creds.del(k)
		}
	}
	info := CredentialInfo{SubjectID: c.SubjectID, CredentialID: c.CredentialID,
		DeviceID: c.DeviceID, BreakGlass: c.BreakGlass}
	if d := c.Device; d != nil {
		info.PhoneModel, info.OSName, info.OSVersion, info.AppVersion = d.PhoneModel, d.OSName, d.OSVersion, d.AppVersion
	}
	h := r.holderOf(info)
	for i, ref := range c.Refs {
		if ref.UserRefHash != "" {
			r.creds.set(keys[i], h)
		}
	}
	return keys
}

// ApplyJSON decodes one credential.events record (a superset of
// event.Credential is fine) and applies it.
func (f *Feed) ApplyJSON(data []byte) error {
	var c event.Credential
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("decode credential record: %w", err)
	}
	f.Apply(c)
	return nil
}
