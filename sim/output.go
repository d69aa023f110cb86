package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

// StandIn registers the simulated estate: it writes the registry file
// `keyfleet serve --registry` loads, and publishes the credentials' lifecycle
// records on credential.events (keyed by credential_id) in the control
// plane's record format (control.Record: op "import", issuer "simulator",
// approval rule "auto", the door groups and the locks that hold the
// credential, a per-credential sequence). The control plane rebuilds its state
// from that topic, so it knows the fleet's credentials as its own: revoking
// one through the API sends revoke commands to exactly the locks holding it,
// which the gateway simulators apply.
type StandIn struct {
	// RegistryPath, when set, receives the registry file.
	RegistryPath string
	// Records, when set, is a writer for credential.events.
	Records *kafka.Writer
	// Fleet, when set, supplies door groups and lock holdings of records.
	Fleet *fleet.Fleet

	mu  sync.Mutex
	seq map[string]uint64
}

var _ Registrar = (*StandIn)(nil)

// Register implements Registrar.
func (s *StandIn) Register(ctx context.Context, r *Registration) error {
	if s.RegistryPath != "" {
		write := func() error { return WriteRegistry(s.RegistryPath, r.Registry) }
		if r.Fleet != nil && r.Registry.Locks == nil && r.Registry.Credentials == nil {
			write = func() error { return WriteFleetRegistry(s.RegistryPath, r.Fleet) }
		}
		if err := write(); err != nil {
			return err
		}
	}
	if s.Records == nil || len(r.Records) == 0 {
		return nil
	}
	// In batches, encoded as they go (a million people's records encoded at
	// once are gigabytes).
	msgs := make([]kafka.Message, 0, 5000)
	for i := range r.Records {
		m, err := s.credentialMessage(&r.Records[i])
		if err != nil {
			return err
		}
		if msgs = append(msgs, m); len(msgs) == cap(msgs) || i == len(r.Records)-1 {
			if err := s.Records.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("publish credential records: %w", err)
			}
			msgs = make([]kafka.Message, 0, 5000)
		}
	}
	return nil
}

// Change implements Registrar.
func (s *StandIn) Change(ctx context.Context, rec *event.Credential) error {
	if s.Records == nil {
		return nil
	}
	m, err := s.credentialMessage(rec)
	if err != nil {
		return err
	}
	if err := s.Records.WriteMessages(ctx, m); err != nil {
		return fmt.Errorf("publish credential record: %w", err)
	}
	return nil
}

func (s *StandIn) credentialMessage(rec *event.Credential) (kafka.Message, error) {
	r := control.Record{Credential: *rec, Op: "import", Issuer: "simulator", ApprovalRule: control.ApprovalAuto, CommandDone: true}
	r.Record = "" // the replay-file marker is not part of the topic's records
	s.mu.Lock()
	if s.seq == nil {
		s.seq = map[string]uint64{}
	}
	s.seq[rec.CredentialID]++
	r.Seq = s.seq[rec.CredentialID]
	s.mu.Unlock()
	if s.Fleet != nil {
		if c, ok := s.Fleet.CredentialByID(rec.CredentialID); ok {
			for _, l := range s.Fleet.Access(c.Index) {
				lock := &s.Fleet.Locks[l]
				r.Locks = append(r.Locks, control.LockRef{Vendor: lock.Vendor, LockID: lock.LockID})
			}
			r.DoorGroups = slices.Clone(c.Kinds)
			if r.State == event.StateIssued || r.State == event.StateActive {
				r.IssuedMs = rec.TsMs
			}
		}
	}
	v, err := json.Marshal(&r)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode credential record: %w", err)
	}
	return kafka.Message{Key: []byte(rec.CredentialID), Value: v, Time: time.UnixMilli(rec.TsMs)}, nil
}

// WriteRegistry writes a registry file atomically.
func WriteRegistry(path string, f registry.File) error {
	return writeJSONFile(path, f)
}

// WriteFleetRegistry writes a fleet's registry file (fleet.Registry)
// atomically, streaming its references (the same bytes as WriteRegistry of
// f.Registry(), without holding them: at a million people they are
// gigabytes).
func WriteFleetRegistry(path string, f *fleet.Fleet) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyfleet-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	locks, err := json.Marshal(f.RegistryLocks())
	if err != nil {
		return fail(err)
	}
	w.WriteString(`{"locks":`)
	w.Write(locks)
	w.WriteString(`,"credentials":`)
	n := 0
	f.EachRegistryCredential(func(c registry.Credential) {
		data, e := json.Marshal(c)
		if e != nil {
			err = e
			return
		}
		if n == 0 {
			w.WriteByte('[')
		} else {
			w.WriteByte(',')
		}
		n++
		w.Write(data)
	})
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		w.WriteString("null")
	} else {
		w.WriteByte(']')
	}
	w.WriteString("}\n")
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Identity is one subject's organisation reference and display name, in the
// body shape of keyfleet's POST /v1/subjects/identities.
type Identity struct {
	SubjectID   string `json:"subject_id"`
	SubjectRef  string `json:"subject_ref"`
	DisplayName string `json:"display_name"`
}

// WriteIdentities writes the fleet's subjects as identities (a JSON array
// for POST /v1/subjects/identities): a directory-style reference per
// subject and the display name its vendor apps show.
func WriteIdentities(path string, f *fleet.Fleet) error {
	ids := make([]Identity, len(f.Subjects))
	for i, s := range f.Subjects {
		ids[i] = Identity{SubjectID: s.ID, SubjectRef: fmt.Sprintf("dir:%06d", s.Index+1), DisplayName: s.Name}
	}
	return writeJSONFile(path, ids)
}

// writeJSONFile writes v as JSON to path through a temporary file, so a
// reader never sees half a file.
func writeJSONFile(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyfleet-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Resolver returns the registry a normalizer resolves the fleet's events
// with (what `keyfleet serve --registry` builds from the registry file).
func Resolver(f *fleet.Fleet, key []byte) *registry.Registry {
	file := f.Registry()
	for i := range file.Credentials {
		c := &file.Credentials[i]
		c.UserRefHash = event.RefHash(key, c.Vendor, c.UserRef)
		c.UserRef = ""
	}
	r := registry.New()
	r.Apply(file)
	return r
}

// KafkaRaw writes raw records to lock.events.raw, keyed by lock id, in
// batches written in the background (so generation and the broker work at
// the same time).
type KafkaRaw struct {
	w      *kafka.Writer
	logger *slog.Logger

	mu    sync.Mutex // batch, arena, err
	batch []kafka.Message
	arena []byte
	err   error

	sendMu  sync.Mutex // sends on ch, closed
	closed  bool
	ch      chan []kafka.Message
	done    chan struct{}
	stop    chan struct{}
	stopped sync.Once
}

var _ Sink = (*KafkaRaw)(nil)

// NewKafkaRaw returns a sink writing to cfg's lock.events.raw until Close.
func NewKafkaRaw(cfg bus.Config, logger *slog.Logger) *KafkaRaw {
	k := &KafkaRaw{w: bus.NewWriter(cfg, bus.TopicRaw), logger: logger,
		ch: make(chan []kafka.Message, 4), done: make(chan struct{}), stop: make(chan struct{})}
	go k.run()
	go k.tick()
	return k
}

func (k *KafkaRaw) run() {
	defer close(k.done)
	for batch := range k.ch {
		if k.failed() != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := k.w.WriteMessages(ctx, batch...)
		cancel()
		if err != nil {
			k.mu.Lock()
			k.err = fmt.Errorf("produce raw records: %w", err)
			k.mu.Unlock()
		}
	}
}

// tick sends a partial batch at least every 50 ms (real time).
func (k *KafkaRaw) tick() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			k.mu.Lock()
			k.sendLocked()
			k.mu.Unlock()
		}
	}
}

func (k *KafkaRaw) failed() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// sendLocked hands the batch to the writer goroutine; k.mu is held on entry
// and exit, but not while waiting for room in the channel.
func (k *KafkaRaw) sendLocked() {
	if len(k.batch) == 0 {
		return
	}
	batch := k.batch
	k.batch, k.arena = make([]kafka.Message, 0, 4096), make([]byte, 0, 1<<20)
	k.mu.Unlock()
	k.sendMu.Lock()
	if !k.closed {
		k.ch <- batch
	}
	k.sendMu.Unlock()
	k.mu.Lock()
}

// Raw implements Sink.
func (k *KafkaRaw) Raw(_ context.Context, r *RawRecord) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	start := len(k.arena)
	if cap(k.arena)-len(k.arena) < 2048 {
		k.arena = make([]byte, 0, 1<<20)
		start = 0
	}
	k.arena = r.Envelope.AppendJSON(k.arena)
	value := k.arena[start:len(k.arena):len(k.arena)]
	k.batch = append(k.batch, kafka.Message{Key: []byte(r.Key), Value: value,
		Time: time.UnixMilli(r.Envelope.ReceivedMs)})
	if len(k.batch) >= 5000 {
		k.sendLocked()
	}
	return nil
}

// Credential implements Sink: credential records go through the Registrar.
func (k *KafkaRaw) Credential(context.Context, *event.Credential) error { return nil }

// Close sends what is buffered and waits until the broker acknowledged it.
func (k *KafkaRaw) Close(ctx context.Context) error {
	k.stopped.Do(func() {
		close(k.stop)
		k.mu.Lock()
		k.sendLocked()
		k.mu.Unlock()
		k.sendMu.Lock()
		k.closed = true
		close(k.ch)
		k.sendMu.Unlock()
	})
	select {
	case <-k.done:
	case <-ctx.Done():
		return fmt.Errorf("flush raw records: %w", ctx.Err())
	}
	return errors.Join(k.failed(), k.w.Close())
}

// Replay writes a `keyfleet detect --replay` file: the access events the
// normalizer makes of every raw record ("record":"access") interleaved with
// credential lifecycle records ("record":"credential"), in time order.
type Replay struct {
	w          *bufio.Writer
	n          *normalize.Normalizer
	events     []event.Access
	line       []byte
	Lines      int64
	Errors     map[string]int // normalizer rejections by vendor
	NoAdapter  map[string]int // records of vendors without an adapter, by vendor
	FirstError error
	// Check, when set, is called with every normalized event and what the
	// simulation knows about its record.
	Check func(e *event.Access, exp Expect)
}

var _ Sink = (*Replay)(nil)

// NewReplay returns a replay sink writing to w, normalizing with n.
func NewReplay(w io.Writer, n *normalize.Normalizer) *Replay {
	return &Replay{w: bufio.NewWriterSize(w, 1<<20), n: n, Errors: map[string]int{}, NoAdapter: map[string]int{}}
}

// Raw implements Sink.
func (r *Replay) Raw(_ context.Context, rec *RawRecord) error {
	vendor := rec.Envelope.Vendor
	if !r.n.Has(vendor) {
		r.NoAdapter[vendor]++
		return nil
	}
	var err error
	r.events, err = r.n.Normalize(r.events[:0], vendor, rec.Envelope.ReceivedMs, "", rec.Payload)
	if err != nil {
		r.Errors[vendor]++
		if r.FirstError == nil {
			r.FirstError = fmt.Errorf("%s record %q: %w", vendor, rec.Payload, err)
		}
		return nil
	}
	for i := range r.events {
		e := &r.events[i]
		if r.Check != nil {
			r.Check(e, rec.Expect)
		}
		r.line = append(r.line[:0], `{"record":"access",`...)
		r.line = e.AppendJSON(r.line)
		// AppendJSON starts with '{': splice it after the record marker.
		r.line = append(r.line[:len(`{"record":"access",`)], r.line[len(`{"record":"access",`)+1:]...)
		r.line = append(r.line, '\n')
		if _, err := r.w.Write(r.line); err != nil {
			return fmt.Errorf("write replay: %w", err)
		}
		r.Lines++
	}
	return nil
}

// Credential implements Sink.
func (r *Replay) Credential(_ context.Context, rec *event.Credential) error {
	c := *rec
	c.Record = "credential"
	data, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("encode credential record: %w", err)
	}
	if _, err := r.w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write replay: %w", err)
	}
	r.Lines++
	return nil
}

// Close implements Sink.
func (r *Replay) Close(context.Context) error {
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("write replay: %w", err)
	}
	return nil
}

// RawFile writes raw envelopes as JSON lines (what `keyfleet normalize`
// reads without --vendor).
type RawFile struct {
	w    *bufio.Writer
	line []byte
}

var _ Sink = (*RawFile)(nil)

// NewRawFile returns a sink writing envelopes to w.
func NewRawFile(w io.Writer) *RawFile { return &RawFile{w: bufio.NewWriterSize(w, 1<<20)} }

// Raw implements Sink.
func (f *RawFile) Raw(_ context.Context, r *RawRecord) error {
	f.line = append(r.Envelope.AppendJSON(f.line[:0]), '\n')
	if _, err := f.w.Write(f.line); err != nil {
		return fmt.Errorf("write raw records: %w", err)
	}
	return nil
}

// Credential implements Sink.
func (f *RawFile) Credential(context.Context, *event.Credential) error { return nil }

// Close implements Sink.
func (f *RawFile) Close(context.Context) error {
	if err := f.w.Flush(); err != nil {
		return fmt.Errorf("write raw records: %w", err)
	}
	return nil
}

// WriteLabels writes labels as JSON lines.
func WriteLabels(w io.Writer, labels []backtest.Label) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range labels {
		if err := enc.Encode(&labels[i]); err != nil {
			return fmt.Errorf("write labels: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write labels: %w", err)
	}
	return nil
}
