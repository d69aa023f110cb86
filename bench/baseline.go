package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

var (
	baselineTableSQL  = chstorage.Query("bench/baseline_table")
	createDatabaseSQL = chstorage.Query("bench/create_database")
)

// baselineLoop is the yardstick of every run: the least a Kafka → ClickHouse
// sink does with lock.events.raw — kafka-go fetches in a consumer group,
// encoding/json decodes each record's envelope, the fields are appended to
// clickhouse-go columns and inserted in batches of batchSize (blocks of
// 8,192 rows, as keyfleet's writer), offsets committed after each insert. No
// normalization, no detectors, one plain MergeTree table. It runs in the
// harness process, on the same backlog, broker and ClickHouse as keyfleet.
type baselineLoop struct {
	reader    *kafka.Reader
	conn      driver.Conn
	batchSize int
	stored    func(n int) // called after each insert with the rows stored

	vendor, payload []string
	received, off   []int64
	inserted        []int64
	partition       []uint16
}

// envelope is what the baseline decodes of a raw record.
type envelope struct {
	Vendor     string          `json:"vendor"`
	ReceivedMs int64           `json:"received_ms"`
	Payload    json.RawMessage `json:"payload"`
}

// run consumes until records have been stored (or ctx ends).
func (b *baselineLoop) run(ctx context.Context, records int64) error {
	var done int64
	batch := make([]kafka.Message, 0, b.batchSize)
	for done < records {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		for len(batch) < b.batchSize && done+int64(len(batch)) < records {
			m, err := b.reader.FetchMessage(cctx)
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(batch) == 0 {
			continue
		}
		b.vendor, b.payload, b.received, b.off, b.partition = b.vendor[:0], b.payload[:0], b.received[:0], b.off[:0], b.partition[:0]
		var e envelope
		for _, m := range batch {
			e = envelope{}
			if err := json.Unmarshal(m.Value, &e); err != nil {
				continue
			}
			b.vendor = append(b.vendor, e.Vendor)
			b.received = append(b.received, e.ReceivedMs)
			b.payload = append(b.payload, string(e.Payload))
			b.partition = append(b.partition, uint16(m.Partition))
			b.off = append(b.off, m.Offset)
		}
		if err := b.insert(ctx); err != nil {
			return err
		}
		last := map[int]kafka.Message{}
		for _, m := range batch {
			last[m.Partition] = kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
		}
		offsets := make([]kafka.Message, 0, len(last))
		for _, m := range last {
			offsets = append(offsets, m)
		}
		if err := b.reader.CommitMessages(ctx, offsets...); err != nil {
			return fmt.Errorf("baseline commit: %w", err)
		}
		done += int64(len(batch))
		b.stored(len(b.vendor))
		clear(batch)
		batch = batch[:0]
	}
	return nil
}

func (b *baselineLoop) insert(ctx context.Context) error {
	n := len(b.vendor)
	if n == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	b.inserted = b.inserted[:0]
	for range n {
		b.inserted = append(b.inserted, now)
	}
	batch, err := b.conn.PrepareBatch(ctx, "INSERT INTO baseline_raw (vendor, received_ms, partition, offset, payload, inserted_ms)")
	if err != nil {
		return fmt.Errorf("baseline insert: %w", err)
	}
	for start := 0; start < n; start += 8192 {
		end := min(start+8192, n)
		cols := []any{b.vendor[start:end], b.received[start:end], b.partition[start:end], b.off[start:end],
			b.payload[start:end], b.inserted[start:end]}
		for i, c := range cols {
			if err := batch.Column(i).Append(c); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("baseline insert: %w", err)
			}
		}
		if end < n {
			if err := batch.Flush(); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("baseline insert: %w", err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("baseline insert: %w", err)
	}
	return nil
}

// rawRecords returns how many records lock.events.raw holds.
func (r *run) rawRecords(ctx context.Context) (int64, error) {
	parts, err := bus.Partitions(ctx, r.bc, bus.TopicRaw, "")
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range parts {
		n += p.End - p.First
	}
	return n, nil
}

// compare measures the baseline loop and keyfleet on the whole raw backlog,
// interleaved: baseline, keyfleet, baseline, … (BaselineRounds pairs). Each
// round reads the topic from the start in a consumer group of its own and
// writes a database of its own (serve restarts on a fresh one).
func (r *run) compare(ctx context.Context) error {
	records, err := r.rawRecords(ctx)
	if err != nil {
		return err
	}
	c := &Comparison{Records: records}
	r.res.Comparison = c
	for i := 1; i <= r.o.BaselineRounds; i++ {
		if r.srv != nil {
			r.stopServe()
		}
		b, err := r.baselineRound(ctx, i, records)
		if err != nil {
			return fmt.Errorf("baseline round %d: %w", i, err)
		}
		c.Rounds = append(c.Rounds, b)
		k, err := r.keyfleetRound(ctx, i, records)
		if err != nil {
			return fmt.Errorf("keyfleet round %d: %w", i, err)
		}
		c.Rounds = append(c.Rounds, k)
		if b.EventsPerSecond > 0 {
			c.PairRatios = append(c.PairRatios, k.EventsPerSecond/b.EventsPerSecond)
		}
		r.logger.Info("comparison round", "round", i, "baseline_events_per_s", int64(b.EventsPerSecond),
			"keyfleet_events_per_s", int64(k.EventsPerSecond), "baseline_us", fmt.Sprintf("%.1f", b.TotalUs),
			"keyfleet_us", fmt.Sprintf("%.1f", k.TotalUs))
	}
	c.Keyfleet, c.Baseline = medianSide(c.Rounds, "keyfleet"), medianSide(c.Rounds, "baseline")
	c.Ratio = Side{
		EventsPerSecond: ratio(c.Keyfleet.EventsPerSecond, c.Baseline.EventsPerSecond),
		ProcessUs:       ratio(c.Keyfleet.ProcessUs, c.Baseline.ProcessUs),
		ClickHouseUs:    ratio(c.Keyfleet.ClickHouseUs, c.Baseline.ClickHouseUs),
		KafkaUs:         ratio(c.Keyfleet.KafkaUs, c.Baseline.KafkaUs),
		TotalUs:         ratio(c.Keyfleet.TotalUs, c.Baseline.TotalUs),
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func medianSide(rounds []CompareRound, kind string) Side {
	var eps, proc, ch, kf, tot []float64
	for _, rd := range rounds {
		if rd.Kind == kind {
			eps, proc, ch, kf, tot = append(eps, rd.EventsPerSecond), append(proc, rd.ProcessUs),
				append(ch, rd.ClickHouseUs), append(kf, rd.KafkaUs), append(tot, rd.TotalUs)
		}
	}
	return Side{EventsPerSecond: median(eps), ProcessUs: median(proc), ClickHouseUs: median(ch), KafkaUs: median(kf), TotalUs: median(tot)}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// roundDB creates a comparison round's database and remembers it for the
// cleanup.
func (r *run) roundDB(ctx context.Context, name string) error {
	conn, err := chstorage.Open(ctx, r.serverConfig())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := createDatabaseSQL.Exec(ctx, conn, chstorage.Args{"database": name}); err != nil {
		return err
	}
	r.extraDBs = append(r.extraDBs, name)
	return nil
}

func (r *run) baselineRound(ctx context.Context, i int, records int64) (CompareRound, error) {
	out := CompareRound{Kind: "baseline"}
	db := r.baseDB() + "_b" + strconv.Itoa(i)
	if err := r.roundDB(ctx, db); err != nil {
		return out, err
	}
	cfg := r.chCfg
	cfg.Database = db
	conn, err := chstorage.OpenBulk(ctx, cfg)
	if err != nil {
		return out, err
	}
	defer conn.Close()
	if err := baselineTableSQL.Exec(ctx, conn, nil); err != nil {
		return out, err
	}
	r.settle(ctx)
	reader := bus.NewGroupReader(r.bc, bus.TopicRaw, "baseline-"+strconv.Itoa(i))
	defer reader.Close()
	s := newSampler(nil, r.chPIDs, r.kPIDs)
	loop := &baselineLoop{reader: reader, conn: conn, batchSize: 50000, stored: func(n int) { s.rows.Add(int64(n)) }}
	go s.run()
	start := time.Now()
	err = loop.run(ctx, records)
	s.stop()
	s.take() // the end
	if err != nil {
		return out, err
	}
	r.logger.Info("baseline loop drained the backlog", "round", i, "records", records, "took", time.Since(start).Round(time.Millisecond))
	return sideOf(out, s.between(start, time.Now()), records), nil
}

// settle waits for the merges of the run's databases so far, so a round
// does not pay for the previous one's.
func (r *run) settle(ctx context.Context) {
	for _, db := range append([]string{r.baseDB()}, r.extraDBs...) {
		r.waitMergesIn(ctx, db, time.Minute)
	}
}

// sideOf measures a drain from its samples: the rate over the 5th–95th
// percentile of the stored rows, and the CPU per event within it.
func sideOf(out CompareRound, samples []sample, total int64) CompareRound {
	if len(samples) < 2 {
		return out
	}
	at := func(frac float64) (sample, bool) {
		want := frac * float64(total)
		for _, sm := range samples {
			if sm.rows >= want {
				return sm, true
			}
		}
		return sample{}, false
	}
	a, okA := at(0.05)
	b, okB := at(0.95)
	for _, sm := range samples {
		out.PeakRSSMiB = math.Max(out.PeakRSSMiB, float64(sm.rss)/(1<<20))
	}
	secs := b.at.Sub(a.at).Seconds()
	rows := b.rows - a.rows
	out.Events = int64(samples[len(samples)-1].rows)
	if !okA || !okB || secs <= 0 || rows <= 0 {
		return out
	}
	out.WindowSeconds = secs
	out.EventsPerSecond = rows / secs
	out.ProcessUs = (b.serveCPU - a.serveCPU) / rows * 1e6
	out.ClickHouseUs = (b.chCPU - a.chCPU) / rows * 1e6
	out.KafkaUs = (b.kafkaCPU - a.kafkaCPU) / rows * 1e6
	out.TotalUs = out.ProcessUs + out.ClickHouseUs + out.KafkaUs
	return out
}

// keyfleetRound restarts serve on a fresh database with its raw consumer
// group deleted, so it drains the whole backlog again.
func (r *run) keyfleetRound(ctx context.Context, i int, records int64) (CompareRound, error) {
	out := CompareRound{Kind: "keyfleet"}
	if r.srv != nil {
		r.stopServe()
	}
	if err := deleteGroup(ctx, r.bc, bus.GroupNormalize); err != nil {
		return out, err
	}
	r.settle(ctx)
	r.chCfg.Database = r.baseDB() + "_k" + strconv.Itoa(i)
	r.extraDBs = append(r.extraDBs, r.chCfg.Database)
	// No detector warm-up: the database is fresh, but access.events (with
	// --access-events topic) still holds the earlier drains' events, which
	// the warm-up would replay (by Kafka time: all of them) into this
	// round's CPU and memory.
	args := r.o.ServeArgs
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--detect-warm-up") }) {
		r.o.ServeArgs = append(slices.Clip(args), "--detect-warm-up=-1s")
		defer func() { r.o.ServeArgs = args }()
	}
	t, err := r.drain(ctx, records, 0)
	if err != nil {
		return out, err
	}
	samples := r.sampler.between(time.Time{}, time.Now())
	out = sideOf(out, samples, t.Events)
	out.Events = t.Events
	out.PeakRSSMiB = t.PeakRSSMiB
	return out, nil
}

// deleteGroup deletes one of the run's consumer groups (its members must
// have left).
func deleteGroup(ctx context.Context, bc bus.Config, group string) error {
	client := bc.Client(30 * time.Second)
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var resp *kafka.DeleteGroupsResponse
		resp, err = client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{bc.TopicPrefix + group}})
		if err == nil {
			err = resp.Errors[bc.TopicPrefix+group]
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // the group may still be emptying
		}
	}
	return fmt.Errorf("delete consumer group %s: %w", group, err)
}
