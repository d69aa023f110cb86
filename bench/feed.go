package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
)

// segment is one simulator run of the feed: the fleet's activity over a
// window of simulated time, stopped after count raw records. Segments have
// distinct seeds (so distinct vendor event ids) and ascending windows.
type segment struct {
	seed           uint64
	startMs, endMs int64
	count          int64
}

// timeline lays out the feeds' segments back to back in simulated time,
// oldest first: each feed's event times follow the previous one's, and all
// lie in the past (Kafka refuses records stamped more than an hour ahead).
// Each segment gets a window large enough for its count at the fleet's rate
// of records per simulated day (the simulator stops at the count).
type timeline struct {
	cursorMs      int64
	recordsPerDay float64
	nextSeed      uint64
	now           func() time.Time
}

// newTimeline returns a timeline whose feeds of up to total records (in up
// to feeds×parts segments) end before now.
func newTimeline(now func() time.Time, recordsPerDay float64, total int64, segments int) *timeline {
	t := &timeline{recordsPerDay: recordsPerDay, cursorMs: math.MaxInt64, now: now}
	t.makeRoom(total, segments)
	return t
}

// makeRoom moves the timeline back, if needed, so that feeds of up to
// total records (in up to segments segments) after it still end before
// now. Feeds laid out after a move overlap earlier ones in event time
// (with other seeds, so other events).
func (t *timeline) makeRoom(total int64, segments int) {
	// Each segment's window is its share of the total plus a day.
	start := t.now().Add(-time.Hour).UnixMilli() - t.windowMs(total) + int64(1-segments)*24*3600*1000
	t.cursorMs = min(t.cursorMs, start)
}

// windowMs is the simulated time n records need, with a margin.
func (t *timeline) windowMs(n int64) int64 {
	return int64((float64(n)/t.recordsPerDay*1.5 + 1) * 24 * 3600 * 1000)
}

// next returns segments holding total records, in parts, after the
// previous ones (moved back first if they would not end before now).
func (t *timeline) next(total int64, parts int) []segment {
	parts = max(1, min(parts, int(total)))
	t.makeRoom(total, parts)
	segs := make([]segment, parts)
	for i := range segs {
		n := total / int64(parts)
		if i == parts-1 {
			n += total % int64(parts)
		}
		t.nextSeed++
		end := t.cursorMs + t.windowMs(n)
		segs[i] = segment{seed: t.nextSeed, startMs: t.cursorMs, endMs: end, count: n}
		t.cursorMs = end
	}
	return segs
}

// generator runs the simulator (sim) over segments.
type generator struct {
	fleet    *fleet.Fleet
	key      []byte
	profiles map[string]locks.Profile
	logger   *slog.Logger
	workers  int
}

// run generates the segments, workers at a time; sinks returns the sinks of
// segment i, registrar (may be nil) is used by the first segment only.
func (g *generator) run(ctx context.Context, segs []segment, sinks func(i int) ([]sim.Sink, error), registrar sim.Registrar) (int64, error) {
	var total atomic.Int64
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(1, g.workers))
	for i, sg := range segs {
		eg.Go(func() error {
			ss, err := sinks(i)
			if err != nil {
				return err
			}
			o := sim.Options{Fleet: g.fleet, Seed: sg.seed, PseudonymKey: g.key, Mode: sim.ModeBackfill,
				StartMs: sg.startMs, EndMs: sg.endMs, Count: sg.count, AnomalyScale: 1, Profiles: g.profiles,
				Sinks: ss, Logger: g.logger, ProgressEvery: time.Hour}
			if i == 0 && registrar != nil {
				o.Registrar = registrar
			}
			s, err := sim.New(o)
			if err != nil {
				return fmt.Errorf("simulator: %w", err)
			}
			st, _, err := s.Run(ctx)
			if err != nil {
				return fmt.Errorf("simulate segment %d: %w", i, err)
			}
			total.Add(st.Records)
			return nil
		})
	}
	err := eg.Wait()
	return total.Load(), err
}

// pool is a feed of pre-generated raw records on disk, read in order by
// the paced producer.
type pool struct {
	files []string
	next  int
	f     *os.File
	r     *bufio.Reader
}

// poolRecord is one record of a pool; its slices are reused by the reader.
type poolRecord struct {
	key, vendor, payload []byte
}

// fileSink writes raw records to a pool file: per record the lock id (the
// Kafka key), the vendor and the envelope payload (JSON), each
// length-prefixed.
type fileSink struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
}

var _ sim.Sink = (*fileSink)(nil)

func newFileSink(path string) (*fileSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("pool file: %w", err)
	}
	return &fileSink{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (s *fileSink) Raw(_ context.Context, r *sim.RawRecord) error {
	b := s.buf[:0]
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	b = binary.AppendUvarint(b, uint64(len(r.Envelope.Vendor)))
	b = append(b, r.Envelope.Vendor...)
	b = binary.AppendUvarint(b, uint64(len(r.Envelope.Payload)))
	b = append(b, r.Envelope.Payload...)
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("write pool: %w", err)
	}
	return nil
}

func (s *fileSink) Credential(context.Context, *event.Credential) error { return nil }

func (s *fileSink) Close(context.Context) error {
	err := s.w.Flush()
	return errors.Join(err, s.f.Close())
}

// generatePool writes segs to files under dir (one per segment) and returns
// the pool reading them in order; registrar (may be nil) registers the
// fleet (credential records) from the first segment.
func (g *generator) generatePool(ctx context.Context, dir, name string, segs []segment, registrar sim.Registrar) (*pool, int64, error) {
	p := &pool{}
	for i := range segs {
		p.files = append(p.files, filepath.Join(dir, fmt.Sprintf("%s-%02d.pool", name, i)))
	}
	n, err := g.run(ctx, segs, func(i int) ([]sim.Sink, error) {
		s, err := newFileSink(p.files[i])
		if err != nil {
			return nil, err
		}
		return []sim.Sink{s}, nil
	}, registrar)
	return p, n, err
}

// read fills rec with the next record; io.EOF when the pool is exhausted.
func (p *pool) read(rec *poolRecord) error {
	for {
		if p.r == nil {
			if p.next >= len(p.files) {
				return io.EOF
			}
			f, err := os.Open(p.files[p.next])
			if err != nil {
				return fmt.Errorf("pool: %w", err)
			}
			p.next++
			p.f, p.r = f, bufio.NewReaderSize(f, 1<<20)
		}
		err := p.readOne(rec)
		if errors.Is(err, io.EOF) {
			p.f.Close()
			os.Remove(p.f.Name())
			p.f, p.r = nil, nil
			continue
		}
		return err
	}
}

func (p *pool) readOne(rec *poolRecord) error {
	field := func(dst []byte) ([]byte, error) {
		n, err := binary.ReadUvarint(p.r)
		if err != nil {
			return dst, err
		}
		if n > 16<<20 {
			return dst, fmt.Errorf("pool: record field of %d bytes", n)
		}
		if uint64(cap(dst)) < n {
			dst = make([]byte, n)
		}
		dst = dst[:n]
		if _, err := io.ReadFull(p.r, dst); err != nil {
			return dst, fmt.Errorf("pool: truncated record: %w", err)
		}
		return dst, nil
	}
	var err error
	if rec.key, err = field(rec.key); err != nil {
		return err
	}
	if rec.vendor, err = field(rec.vendor); err != nil {
		return unexpected(err)
	}
	rec.payload, err = field(rec.payload)
	return unexpected(err)
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// close removes what is left of the pool.
func (p *pool) close() {
	if p.f != nil {
		p.f.Close()
	}
	for _, f := range p.files {
		os.Remove(f)
	}
}

// paced is the outcome of one paced production.
type paced struct {
	Sent    int64
	StartMs int64
	EndMs   int64
	// Exhausted is set when the pool ran out before the duration.
	Exhausted bool
}

// producePaced writes records from p to the raw topic at rate records/s for
// d (rate 0: as fast as possible until p is exhausted), stamping each
// envelope's received_ms (and the Kafka timestamp) with the wall clock when
// it is handed to the Kafka client: that is the "produced" time freshness
// and detection latency count from. Writes run on several connections so
// one slow acknowledgement does not stall the pace; when the broker cannot
// keep up the producer falls behind (Sent tells).
func producePaced(ctx context.Context, bc bus.Config, p *pool, rate float64, d time.Duration) (paced, error) {
	w := bus.NewWriter(bc, bus.TopicRaw)
	w.BatchTimeout = time.Millisecond
	defer w.Close()
	batches := make(chan []kafka.Message, 8)
	var (
		werr error
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := w.WriteMessages(ctx, b...); err != nil {
					mu.Lock()
					werr = errors.Join(werr, err)
					mu.Unlock()
				}
			}
		}()
	}
	var res paced
	var rec poolRecord
	start := time.Now()
	res.StartMs = start.UnixMilli()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		elapsed := time.Since(start)
		if rate > 0 && elapsed >= d {
			break
		}
		due := int64(rate*elapsed.Seconds()) - res.Sent
		if rate <= 0 {
			due = 5000
		}
		for due > 0 {
			n := min(due, 5000)
			now := time.Now()
			ms := now.UnixMilli()
			msgs := make([]kafka.Message, 0, n)
			arena := make([]byte, 0, n*400)
			for range n {
				if err := p.read(&rec); err != nil {
					if errors.Is(err, io.EOF) {
						res.Exhausted = true
						break
					}
					close(batches)
					wg.Wait()
					return res, err
				}
				k := len(arena)
				arena = append(arena, rec.key...)
				key := arena[k:len(arena):len(arena)]
				k = len(arena)
				arena = event.Raw{Vendor: string(rec.vendor), ReceivedMs: ms, Payload: rec.payload}.AppendJSON(arena)
				msgs = append(msgs, kafka.Message{Key: key, Value: arena[k:len(arena):len(arena)], Time: now})
			}
			if len(msgs) > 0 {
				select {
				case batches <- msgs:
				case <-ctx.Done():
					break loop
				}
			}
			res.Sent += int64(len(msgs))
			due -= n
			if res.Exhausted {
				break loop
			}
		}
		if rate <= 0 {
			if ctx.Err() != nil {
				break
			}
			continue
		}
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
	}
	close(batches)
	wg.Wait()
	res.EndMs = time.Now().UnixMilli()
	if werr != nil {
		return res, fmt.Errorf("produce raw records: %w", werr)
	}
	return res, ctx.Err()
}

// createTopics creates the run's topics (keyfleet's names under the run's
// prefix) with unlimited retention: backfilled records carry event-time
// timestamps weeks old, which the broker's default retention would delete
// before they are consumed. They are deleted when the run ends.
func createTopics(ctx context.Context, bc bus.Config) error {
	client := &kafka.Client{Addr: kafka.TCP(bc.Brokers...), Timeout: 30 * time.Second}
	var topics []kafka.TopicConfig
	for _, t := range bus.AllTopics {
		topics = append(topics, kafka.TopicConfig{Topic: bc.Topic(t), NumPartitions: bc.Partitions, ReplicationFactor: -1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}}})
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, terr)
		}
	}
	return nil
}

// deleteTopics deletes every topic of the run.
func deleteTopics(ctx context.Context, bc bus.Config) error {
	client := &kafka.Client{Addr: kafka.TCP(bc.Brokers...), Timeout: 30 * time.Second}
	var names []string
	for _, t := range bus.AllTopics {
		names = append(names, bc.Topic(t))
	}
	resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	var errs []error
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", topic, terr))
		}
	}
	return errors.Join(errs...)
}
