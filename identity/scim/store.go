package scim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store errors. Implementations wrap them (errors.Is) and never put an
// attribute value in the message.
var (
	ErrNotFound = errors.New("resource not found")
	// ErrConflict: a unique key (userName, externalId) or the id is taken.
	ErrConflict = errors.New("unique key taken")
	// ErrVersion: the resource changed since the version the write was based on.
	ErrVersion = errors.New("version mismatch")
)

// Record is one stored resource: the SCIM document as the client sees it
// (without id, meta and schemas, which the record's fields stand for, and
// without computed attributes such as a user's groups) plus bookkeeping.
// Doc is JSON-shaped: strings, booleans, json.Number, []any and
// map[string]any; extension attributes sit under their schema URN.
type Record struct {
	Type     string // "User" or "Group"
	ID       string
	Version  int64 // 1 on create, +1 on every change
	Created  time.Time
	Modified time.Time
	Doc      map[string]any
}

// Key names an indexed attribute of a record.
type Key string

// Indexed keys. UserName and ExternalID are unique per resource type
// (userName case-insensitively); DisplayName and Member are lookups only.
const (
	KeyUserName    Key = "userName"
	KeyExternalID  Key = "externalId"
	KeyDisplayName Key = "displayName"
	KeyMember      Key = "members.value"
	// KeySubjectID is a user's explicit subject_id (access extension).
	KeySubjectID Key = "subject_id"
)

// UniqueKeys are the keys a Store must keep unique within a resource type.
var UniqueKeys = []Key{KeyUserName, KeyExternalID, KeySubjectID}

// Keys returns the record's index values: userName and displayName
// lower-cased (they are case-insensitive), externalId and subject_id as
// they are, and the ids of a group's members.
func (r Record) Keys() map[Key][]string {
	out := map[Key][]string{}
	if s, ok := r.Doc["userName"].(string); ok && s != "" {
		out[KeyUserName] = []string{strings.ToLower(s)}
	}
	if s, ok := r.Doc["externalId"].(string); ok && s != "" {
		out[KeyExternalID] = []string{s}
	}
	if s := explicitSubject(r.Doc); s != "" {
		out[KeySubjectID] = []string{s}
	}
	if s, ok := r.Doc["displayName"].(string); ok && s != "" {
		out[KeyDisplayName] = []string{strings.ToLower(s)}
	}
	out[KeyMember] = memberIDs(r.Doc)
	return out
}

func memberIDs(doc map[string]any) []string {
	var ids []string
	ms, _ := doc["members"].([]any)
	for _, m := range ms {
		if mm, ok := m.(map[string]any); ok {
			if v, ok := mm["value"].(string); ok && v != "" {
				ids = append(ids, v)
			}
		}
	}
	return ids
}

// Query selects records of one type for List. With a Key, only records
// whose index value for the key equals Value (lower-cased for userName and
// displayName) are returned. The service applies the full SCIM filter to
// whatever List returns, so a store may return more than asked (never less).
type Query struct {
	Type  string
	Key   Key
	Value string
}

// Store keeps SCIM resources with versions. It is the only place personal
// data (user names, names, e-mail addresses) is held. Implementations must
// make Create, Replace and Delete atomic with their checks.
type Store interface {
	// Get returns the record, or ErrNotFound.
	Get(ctx context.Context, typ, id string) (Record, error)
	// List returns the records the query selects, in any order.
	List(ctx context.Context, q Query) ([]Record, error)
	// Create stores a new record (Version 1). ErrConflict when the id or a
	// unique key is taken.
	Create(ctx context.Context, r Record) error
	// Replace stores r as the next version of an existing record if its
	// current version is prev: ErrNotFound, ErrVersion, ErrConflict.
	Replace(ctx context.Context, r Record, prev int64) error
	// Delete removes a record whose current version is prev (prev 0: any):
	// ErrNotFound, ErrVersion.
	Delete(ctx context.Context, typ, id string, prev int64) error
}

// MemoryStore is an in-memory Store for tests and the embedded run. Records
// are kept as JSON, as a database would hold them, so nothing a caller
// holds aliases the store.
type MemoryStore struct {
	mu   sync.RWMutex
	recs map[string]map[string]memRecord // type -> id -> record
}

type memRecord struct {
	rec  Record // Doc nil
	doc  []byte
	keys map[Key][]string
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{recs: map[string]map[string]memRecord{}}
}

func (m *MemoryStore) pack(r Record) (memRecord, error) {
	doc, err := json.Marshal(r.Doc)
	if err != nil {
		return memRecord{}, fmt.Errorf("encode record: %w", err)
	}
	keys := r.Keys()
	r.Doc = nil
	return memRecord{rec: r, doc: doc, keys: keys}, nil
}

func (mr memRecord) unpack() (Record, error) {
	r := mr.rec
	doc, err := decodeObject(mr.doc)
	if err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	r.Doc = doc
	return r, nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, typ, id string) (Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mr, ok := m.recs[typ][id]
	if !ok {
		return Record{}, ErrNotFound
	}
	return mr.unpack()
}

// List implements Store, ordered by creation time then id.
func (m *MemoryStore) List(_ context.Context, q Query) ([]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Record
	for _, mr := range m.recs[q.Type] {
		if q.Key != "" && !slices.Contains(mr.keys[q.Key], q.Value) {
			continue
		}
		r, err := mr.unpack()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// conflict reports the first unique key of mr another record of the type holds.
func (m *MemoryStore) conflict(mr memRecord) error {
	for id, other := range m.recs[mr.rec.Type] {
		if id == mr.rec.ID {
			continue
		}
		for _, k := range UniqueKeys {
			for _, v := range mr.keys[k] {
				if slices.Contains(other.keys[k], v) {
					return fmt.Errorf("%w: %s", ErrConflict, k)
				}
			}
		}
	}
	return nil
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, r Record) error {
	mr, err := m.pack(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[r.Type][r.ID]; ok {
		return fmt.Errorf("%w: id", ErrConflict)
	}
	if err := m.conflict(mr); err != nil {
		return err
	}
	if m.recs[r.Type] == nil {
		m.recs[r.Type] = map[string]memRecord{}
	}
	m.recs[r.Type][r.ID] = mr
	return nil
}

// Replace implements Store.
func (m *MemoryStore) Replace(_ context.Context, r Record, prev int64) error {
	mr, err := m.pack(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.recs[r.Type][r.ID]
	if !ok {
		return ErrNotFound
	}
	if cur.rec.Version != prev {
		return ErrVersion
	}
	if err := m.conflict(mr); err != nil {
		return err
	}
	m.recs[r.Type][r.ID] = mr
	return nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, typ, id string, prev int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.recs[typ][id]
	if !ok {
		return ErrNotFound
	}
	if prev != 0 && cur.rec.Version != prev {
		return ErrVersion
	}
	delete(m.recs[typ], id)
	return nil
}

// decodeObject decodes a JSON object keeping numbers as json.Number.
func decodeObject(data []byte) (map[string]any, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// decodeJSON decodes one JSON value keeping numbers as json.Number and
// refusing trailing data.
func decodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}
