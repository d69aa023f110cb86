package stream

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/event"
)

// The view keeps each credential's newest record packed: a byte string
// (varints, ids in binary where they are UUIDs or hex hashes, the strings
// that recur across records — states, roles, sites, vendors, lock ids, door
// groups, windows, device dimensions — as numbers into one shared table),
// unpacked into a fresh control.Record when read. A full record in memory
// costs over a kilobyte (string and slice headers, a copy of every id,
// eight command ids); packed it is a few hundred bytes. Unpacking gives
// back the record exactly (nil and empty slices, nil pointers included):
// TestPackRoundTrip fills every field by reflection.

// names numbers the strings that recur across records: 0 is "", the rest
// in order of first use. What it holds is bounded by the estate and the
// vocabularies (locks, sites, roles, door groups, states, actors), not by
// the credentials. Callers serialize add; text may run under a read lock.
type names struct {
	index map[string]uint32
	texts []string
}

func (n *names) add(s string) uint32 {
	if s == "" {
		return 0
	}
	if i, ok := n.index[s]; ok {
		return i
	}
	if n.index == nil {
		n.index, n.texts = map[string]uint32{}, []string{""}
	}
	s = string([]byte(s)) // its own copy: s may point into a decoded message
	i := uint32(len(n.texts))
	n.texts = append(n.texts, s)
	n.index[s] = i
	return i
}

func (n *names) text(i uint32) string {
	if i == 0 {
		return ""
	}
	return n.texts[i]
}

// Kinds of a packed id.
const (
	idEmpty byte = iota
	idRaw        // length and bytes
	idUUID       // canonical lowercase UUID: 16 bytes
	idHex        // lowercase hex of even length: length/2 and the bytes
)

// packer appends a record's fields to buf.
type packer struct {
	buf []byte
	n   *names
}

func (p *packer) uint(v uint64) { p.buf = binary.AppendUvarint(p.buf, v) }
func (p *packer) int(v int64)   { p.buf = binary.AppendVarint(p.buf, v) }
func (p *packer) name(s string) { p.uint(uint64(p.n.add(s))) }

func (p *packer) raw(s string) {
	p.uint(uint64(len(s)))
	p.buf = append(p.buf, s...)
}

// length writes a slice's length plus one; 0 is a nil slice.
func (p *packer) length(n int, isNil bool) {
	if isNil {
		p.uint(0)
		return
	}
	p.uint(uint64(n) + 1)
}

func (p *packer) flags(bits ...bool) {
	var b byte
	for i, on := range bits {
		if on {
			b |= 1 << i
		}
	}
	p.buf = append(p.buf, b)
}

// id writes a string that is usually unique to the record (ids, hashes,
// free text): UUIDs and hex hashes in binary, anything else as it is.
func (p *packer) id(s string) {
	switch {
	case s == "":
		p.buf = append(p.buf, idEmpty)
	case isUUID(s):
		p.buf = append(p.buf, idUUID)
		for _, part := range [...]string{s[0:8], s[9:13], s[14:18], s[19:23], s[24:36]} {
			p.buf, _ = hex.AppendDecode(p.buf, []byte(part)) // checked by isUUID
		}
	case isLowerHex(s) && len(s)%2 == 0:
		p.buf = append(p.buf, idHex)
		p.uint(uint64(len(s) / 2))
		p.buf, _ = hex.AppendDecode(p.buf, []byte(s)) // checked by isLowerHex
	default:
		p.buf = append(p.buf, idRaw)
		p.raw(s)
	}
}

func (p *packer) names(ss []string) {
	p.length(len(ss), ss == nil)
	for _, s := range ss {
		p.name(s)
	}
}

func (p *packer) ids(ss []string) {
	p.length(len(ss), ss == nil)
	for _, s := range ss {
		p.id(s)
	}
}

func (p *packer) device(d *event.Device) {
	for _, s := range [...]string{d.PhoneModel, d.OSName, d.OSVersion, d.OSPatchLevel, d.AppVersion, d.Facts} {
		p.name(s)
	}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return isLowerHex(s[0:8]) && isLowerHex(s[9:13]) && isLowerHex(s[14:18]) && isLowerHex(s[19:23]) && isLowerHex(s[24:36])
}

// pack returns r packed. The credential id comes first, as it is, so
// packedID reads it without unpacking.
func pack(r *control.Record, n *names) string {
	p := packer{buf: make([]byte, 0, 256), n: n}
	p.raw(r.CredentialID)
	c := &r.Credential
	p.flags(c.Attested, c.BreakGlass, c.Device != nil, r.CommandDone, r.Exception, r.Attestation != nil,
		r.Attestation != nil && r.Attestation.Device != nil)
	p.name(c.Record)
	p.id(c.SubjectID)
	p.name(c.State)
	p.id(c.DeviceID)
	p.name(c.Role)
	p.name(c.SiteID)
	p.int(c.TsMs)
	p.length(len(c.Refs), c.Refs == nil)
	for _, ref := range c.Refs {
		p.name(ref.Vendor)
		p.name(ref.LockID)
		p.id(ref.UserRefHash)
	}
	p.int(c.ValidFromMs)
	p.int(c.ValidUntilMs)
	p.id(c.Reason)
	p.name(c.Actor)
	if c.Device != nil {
		p.device(c.Device)
	}

	p.uint(r.Seq)
	p.name(r.Op)
	p.name(r.PrevState)
	p.id(r.CommandID)
	p.id(r.RequestID)
	p.int(int64(r.Item))
	p.int(r.RequestedMs)
	p.name(r.Issuer)
	p.int(r.IssuedMs)
	p.int(r.ActivatedMs)
	p.name(r.ApprovalRule)
	p.names(r.Approvers)
	p.uint(r.TemplateVersion)
	p.names(r.DoorGroups)
	p.names(r.ExtraGroups)
	p.length(len(r.Windows), r.Windows == nil)
	for _, w := range r.Windows {
		p.names(w.Days)
		p.name(w.Start)
		p.name(w.End)
	}
	p.id(r.ExceptionWhy)
	p.int(r.BreakGlassMs)
	if a := r.Attestation; a != nil {
		p.name(a.Format)
		p.id(a.DeviceID)
		p.id(a.EvidenceSHA256)
		p.int(a.VerifiedMs)
		p.id(a.KeySHA256)
		p.name(a.SecurityLevel)
		p.name(a.AppID)
		p.name(a.Type)
		if a.Device != nil {
			p.device(a.Device)
		}
	}
	p.length(len(r.Locks), r.Locks == nil)
	for _, l := range r.Locks {
		p.name(l.Vendor)
		p.name(l.LockID)
	}
	p.length(len(r.Weaker), r.Weaker == nil)
	for _, w := range r.Weaker {
		p.name(w.Vendor)
		p.name(w.LockID)
		p.name(w.Schedule)
		p.name(w.Expiry)
		p.int(w.ExpiryLateS)
	}
	p.id(r.RevocationID)
	p.id(r.SessionRevokedDevice)
	p.ids(r.Recent)
	return string(p.buf)
}

// packedID returns the credential id of a packed record (a substring of it).
func packedID(s string) string {
	n, k := uvarint(s)
	return s[k : k+int(n)]
}

func uvarint(s string) (uint64, int) {
	var v uint64
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x80 {
			return v | uint64(b)<<(7*i), i + 1
		}
		v |= uint64(b&0x7f) << (7 * i)
	}
	panic("stream: truncated packed record")
}

// unpacker reads a packed record.
type unpacker struct {
	s   string
	pos int
	n   *names
}

func (u *unpacker) uint() uint64 {
	v, k := uvarint(u.s[u.pos:])
	u.pos += k
	return v
}

func (u *unpacker) int() int64 {
	x := u.uint()
	v := int64(x >> 1)
	if x&1 != 0 {
		v = ^v
	}
	return v
}

func (u *unpacker) name() string { return u.n.text(uint32(u.uint())) }

func (u *unpacker) raw() string {
	n := int(u.uint())
	s := u.s[u.pos : u.pos+n]
	u.pos += n
	return s
}

// length returns a slice's length and whether it is nil.
func (u *unpacker) length() (int, bool) {
	n := u.uint()
	if n == 0 {
		return 0, true
	}
	return int(n - 1), false
}

func (u *unpacker) bytes(n int) string {
	s := u.s[u.pos : u.pos+n]
	u.pos += n
	return s
}

func (u *unpacker) id() string {
	kind := u.s[u.pos]
	u.pos++
	switch kind {
	case idEmpty:
		return ""
	case idUUID:
		b := u.bytes(16)
		out := make([]byte, 36)
		hex.Encode(out[0:8], []byte(b[0:4]))
		out[8] = '-'
		hex.Encode(out[9:13], []byte(b[4:6]))
		out[13] = '-'
		hex.Encode(out[14:18], []byte(b[6:8]))
		out[18] = '-'
		hex.Encode(out[19:23], []byte(b[8:10]))
		out[23] = '-'
		hex.Encode(out[24:36], []byte(b[10:16]))
		return string(out)
	case idHex:
		return hex.EncodeToString([]byte(u.bytes(int(u.uint()))))
	default:
		return string([]byte(u.raw())) // its own copy: the packed string is the view's
	}
}

func (u *unpacker) names() []string {
	n, isNil := u.length()
	if isNil {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = u.name()
	}
	return out
}

func (u *unpacker) ids() []string {
	n, isNil := u.length()
	if isNil {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = u.id()
	}
	return out
}

func (u *unpacker) device() *event.Device {
	return &event.Device{PhoneModel: u.name(), OSName: u.name(), OSVersion: u.name(), OSPatchLevel: u.name(),
		AppVersion: u.name(), Facts: u.name()}
}

// unpack returns the record s holds, with its own slices.
func unpack(s string, n *names) *control.Record {
	u := unpacker{s: s, n: n}
	r := &control.Record{}
	c := &r.Credential
	c.CredentialID = string([]byte(u.raw()))
	flags := u.s[u.pos]
	u.pos++
	bit := func(i int) bool { return flags&(1<<i) != 0 }
	c.Attested, c.BreakGlass, r.CommandDone, r.Exception = bit(0), bit(1), bit(3), bit(4)
	c.Record = u.name()
	c.SubjectID = u.id()
	c.State = u.name()
	c.DeviceID = u.id()
	c.Role = u.name()
	c.SiteID = u.name()
	c.TsMs = u.int()
	if k, isNil := u.length(); !isNil {
		c.Refs = make([]event.CredentialRef, k)
		for i := range c.Refs {
			c.Refs[i] = event.CredentialRef{Vendor: u.name(), LockID: u.name(), UserRefHash: u.id()}
		}
	}
	c.ValidFromMs = u.int()
	c.ValidUntilMs = u.int()
	c.Reason = u.id()
	c.Actor = u.name()
	if bit(2) {
		c.Device = u.device()
	}

	r.Seq = u.uint()
	r.Op = u.name()
	r.PrevState = u.name()
	r.CommandID = u.id()
	r.RequestID = u.id()
	r.Item = int(u.int())
	r.RequestedMs = u.int()
	r.Issuer = u.name()
	r.IssuedMs = u.int()
	r.ActivatedMs = u.int()
	r.ApprovalRule = u.name()
	r.Approvers = u.names()
	r.TemplateVersion = u.uint()
	r.DoorGroups = u.names()
	r.ExtraGroups = u.names()
	if k, isNil := u.length(); !isNil {
		r.Windows = make([]control.Window, k)
		for i := range r.Windows {
			r.Windows[i] = control.Window{Days: u.names(), Start: u.name(), End: u.name()}
		}
	}
	r.ExceptionWhy = u.id()
	r.BreakGlassMs = u.int()
	if bit(5) {
		a := &control.Attestation{}
		a.Format = u.name()
		a.DeviceID = u.id()
		a.EvidenceSHA256 = u.id()
		a.VerifiedMs = u.int()
		a.KeySHA256 = u.id()
		a.SecurityLevel = u.name()
		a.AppID = u.name()
		a.Type = u.name()
		if bit(6) {
			a.Device = u.device()
		}
		r.Attestation = a
	}
	if k, isNil := u.length(); !isNil {
		r.Locks = make([]control.LockRef, k)
		for i := range r.Locks {
			r.Locks[i] = control.LockRef{Vendor: u.name(), LockID: u.name()}
		}
	}
	if k, isNil := u.length(); !isNil {
		r.Weaker = make([]control.WeakerLock, k)
		for i := range r.Weaker {
			r.Weaker[i] = control.WeakerLock{Vendor: u.name(), LockID: u.name(), Schedule: u.name(), Expiry: u.name(),
				ExpiryLateS: u.int()}
		}
	}
	r.RevocationID = u.id()
	r.SessionRevokedDevice = u.id()
	r.Recent = u.ids()
	return r
}
