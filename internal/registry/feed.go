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
	refs map[string][]event.CredentialRef // credential id → refs applied
}

// NewFeed returns a feed into r.
func NewFeed(r *Registry) *Feed {
	return &Feed{r: r, refs: map[string][]event.CredentialRef{}}
}

// Apply applies one lifecycle record.
func (f *Feed) Apply(c event.Credential) {
	if c.CredentialID == "" {
		return
	}
	info := CredentialInfo{SubjectID: c.SubjectID, CredentialID: c.CredentialID,
		DeviceID: c.DeviceID, BreakGlass: c.BreakGlass}
	if d := c.Device; d != nil {
		info.PhoneModel, info.OSName, info.OSVersion, info.AppVersion = d.PhoneModel, d.OSName, d.OSVersion, d.AppVersion
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, old := range f.refs[c.CredentialID] {
		if !slices.Contains(c.Refs, old) {
			f.r.RemoveCredential(old.Vendor, old.LockID, old.UserRefHash)
		}
	}
	file := File{Credentials: make([]Credential, 0, len(c.Refs))}
	for _, ref := range c.Refs {
		if ref.UserRefHash == "" {
			continue
		}
		file.Credentials = append(file.Credentials, Credential{Vendor: ref.Vendor, LockID: ref.LockID,
			UserRefHash: ref.UserRefHash, CredentialInfo: info})
	}
	f.r.Apply(file)
	if len(c.Refs) == 0 {
		delete(f.refs, c.CredentialID)
	} else {
		f.refs[c.CredentialID] = slices.Clone(c.Refs)
	}
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
