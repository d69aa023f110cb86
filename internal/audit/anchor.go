package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
)

// FileAnchor appends checkpoints to a file, one JSON object per line,
// synced before Put returns. Keep the file where ClickHouse's writers have
// no access (another host, a WORM volume, a log shipper's input).
type FileAnchor struct {
	path string
	mu   sync.Mutex
}

// NewFileAnchor returns an anchor appending to path (created 0600 if missing).
func NewFileAnchor(path string) *FileAnchor { return &FileAnchor{path: path} }

// Put implements Anchor.
func (a *FileAnchor) Put(_ context.Context, cps ...Checkpoint) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit checkpoint file: %w", err)
	}
	var buf []byte
	for _, c := range cps {
		b, err := json.Marshal(c)
		if err != nil {
			f.Close()
			return fmt.Errorf("encode checkpoint: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("audit checkpoint file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit checkpoint file: %w", err)
	}
	return f.Close()
}

// Checkpoints implements Anchor; a missing file holds none.
func (a *FileAnchor) Checkpoints(_ context.Context) ([]Checkpoint, error) {
	f, err := os.Open(a.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint file: %w", err)
	}
	defer f.Close()
	return ReadCheckpoints(f, a.path)
}

// ReadCheckpoints reads JSON-lines checkpoints (what FileAnchor and
// `keyfleet audit checkpoint` write); name is for errors.
func ReadCheckpoints(f interface{ Read([]byte) (int, error) }, name string) ([]Checkpoint, error) {
	var out []Checkpoint
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal(line, &c); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// KafkaAnchor keeps checkpoints on the audit.checkpoints topic, keyed by
// chain (the topic is compacted: the latest checkpoint of every chain stays).
type KafkaAnchor struct {
	cfg bus.Config
	w   *kafka.Writer
}

// NewKafkaAnchor returns an anchor on cfg's audit.checkpoints topic.
func NewKafkaAnchor(cfg bus.Config) *KafkaAnchor {
	w := bus.NewWriter(cfg, bus.TopicAuditCheckpoints)
	w.BatchTimeout = time.Millisecond
	return &KafkaAnchor{cfg: cfg, w: w}
}

// Put implements Anchor.
func (a *KafkaAnchor) Put(ctx context.Context, cps ...Checkpoint) error {
	msgs := make([]kafka.Message, 0, len(cps))
	for _, c := range cps {
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode checkpoint: %w", err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(c.Chain), Value: b})
	}
	if err := a.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write audit checkpoint: %w", err)
	}
	return nil
}

// Checkpoints implements Anchor: the whole topic, read from its start.
// Records that are not checkpoints are returned as unsigned ones, so the
// verifier reports them instead of skipping them.
func (a *KafkaAnchor) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	var out []Checkpoint
	err := bus.ReadTopic(ctx, a.cfg, bus.TopicAuditCheckpoints, func(m kafka.Message) error {
		var c Checkpoint
		if err := json.Unmarshal(m.Value, &c); err != nil {
			c = Checkpoint{Chain: string(m.Key)}
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	return out, nil
}

// Close closes the writer.
func (a *KafkaAnchor) Close() error { return a.w.Close() }

var (
	_ Anchor = (*FileAnchor)(nil)
	_ Anchor = (*KafkaAnchor)(nil)
)
