package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/sim"
)

var (
	ingestTotalsSQL       = chstorage.Query("bench/ingest_totals")
	deadLettersSinceSQL   = chstorage.Query("bench/dead_letters_since")
	alertsSinceSQL        = chstorage.Query("bench/alerts_since")
	freshnessSQL          = chstorage.Query("bench/freshness")
	detectionLatencySQL   = chstorage.Query("bench/detection_latency")
	mergesRunningSQL      = chstorage.Query("bench/merges_running")
	revocationProgressSQL = chstorage.Query("bench/revocation_progress")
	revocationAcksSQL     = chstorage.Query("bench/revocation_acks")
	revocationRequestsSQL = chstorage.Query("bench/revocation_requests")
	revocationLockAcksSQL = chstorage.Query("bench/revocation_lock_acks")
	revocationLocksSQL    = chstorage.Query("bench/revocation_locks")
	latestEventSQL        = chstorage.Query("bench/latest_event")
	sampleIDsSQL          = chstorage.Query("bench/sample_ids")
)

// throughput backfills the raw topic with records, starts serve and
// measures how fast it drains the backlog into ClickHouse (with the
// detectors running). The first round also publishes the fleet's
// credential records; a later round restarts serve on its new backlog.
func (r *run) throughput(ctx context.Context, records int64, first bool) error {
	o := r.o
	if r.srv != nil {
		r.stopServe()
	}
	// 1. Generate the feed (simulators in parallel, one file per segment,
	// windows in time order) and publish the fleet's credential records,
	// as `keyfleet simulate` does.
	segs := r.tl.next(records, o.Workers)
	var registrar sim.Registrar
	if first {
		recs := bus.NewWriter(r.bc, bus.TopicCredentialEvents)
		defer recs.Close()
		registrar = registerOnly{&sim.StandIn{Records: recs}}
	}
	r.logger.Info("generating the throughput feed", "records", records, "simulators", len(segs))
	start := time.Now()
	p, n, err := r.gen.generatePool(ctx, r.dir, "throughput", segs, registrar)
	if err != nil {
		return err
	}
	defer p.close()
	st := &r.res.Setup
	st.FeedRecords, st.FeedGenerateSeconds = n, time.Since(start).Seconds()

	// 2. Produce it to lock.events.raw as fast as the broker takes it.
	start = time.Now()
	res, err := producePaced(ctx, r.bc, p, 0, 0)
	if err != nil {
		return err
	}
	st.FeedProduceSeconds = time.Since(start).Seconds()
	r.logger.Info("throughput feed in lock.events.raw", "records", res.Sent,
		"generate", time.Duration(st.FeedGenerateSeconds*float64(time.Second)).Round(time.Millisecond),
		"produce", time.Since(start).Round(time.Millisecond))

	// 3. Start serve and watch it drain the backlog.
	t, err := r.drain(ctx, res.Sent, o.ProfileSeconds)
	if t != nil {
		r.res.Throughput = t
	}
	return err
}

// drain starts serve on a backlog of raw records and measures how fast it
// stores them (with the detectors running), with a CPU profile of
// profileSeconds (0: none).
func (r *run) drain(ctx context.Context, raw int64, profileSeconds int) (*Throughput, error) {
	serveStart := time.Now()
	if err := r.startServe(ctx); err != nil {
		return nil, err
	}
	r.logger.Info("keyfleet serve ready", "after", time.Since(serveStart).Round(time.Millisecond))
	t := &Throughput{RawRecords: raw}
	profDone := make(chan error, 1)
	profPath, heapPath := filepath.Join(r.dir, "serve-cpu.pprof"), filepath.Join(r.dir, "serve-heap.pprof")
	var memstats metrics
	profStarted := false
	var lastRows float64
	lastProgress, lastLog := time.Now(), time.Now()
	var written time.Time
	for written.IsZero() {
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(time.Second):
		}
		if !r.srv.alive() {
			return t, fmt.Errorf("%w; log %s:\n%s", errServeDied, r.srv.logPath, tail(r.srv.logPath, 20))
		}
		rows := r.sampler.last().rows
		if rows > lastRows {
			lastRows, lastProgress = rows, time.Now()
		} else if time.Since(lastProgress) > 2*time.Minute {
			return t, fmt.Errorf("stalled at %.0f rows; log %s:\n%s", rows, r.srv.logPath, tail(r.srv.logPath, 20))
		}
		if rows > 0 && !profStarted && profileSeconds > 0 {
			profStarted = true
			go func() {
				// Let the pipeline reach its pace first; the heap profile
				// and memory statistics follow the CPU profile (still
				// draining, near the peak).
				time.Sleep(3 * time.Second)
				err := r.srv.profile(ctx, "profile", profileSeconds, profPath)
				if err == nil {
					err = r.srv.profile(ctx, "heap", 0, heapPath)
				}
				if m, merr := r.srv.scrape(ctx); merr == nil {
					memstats = m
				}
				profDone <- err
			}()
		}
		lags, err := r.lags(ctx)
		if err == nil && lags[0] == 0 && lags[1] == 0 && rows > 0 {
			written = time.Now()
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			r.logger.Info("draining the backlog", "rows", int64(rows), "lags", lags)
		}
	}
	catchUp, drained, err := r.waitDrained(ctx, 5*time.Minute)
	if err != nil {
		return t, err
	}
	if !drained {
		r.note("throughput: the detectors had not caught up %s after the last row was stored", catchUp.Round(time.Second))
	}
	doneAt := time.Now()
	if profStarted {
		if err := <-profDone; err != nil {
			r.note("cpu profile: %v", err)
		} else if ps, err := summarizeProfile(ctx, r.o.Binary, profPath, heapPath, r.o.ProfileOut); err != nil {
			r.note("profile summary: %v", err)
		} else {
			ps.Seconds = profileSeconds
			ps.HeapInuseMiB = memstats.sum("go_memstats_heap_inuse_bytes") / (1 << 20)
			ps.GoSysMiB = memstats.sum("go_memstats_sys_bytes") / (1 << 20)
			r.res.Profile = ps
		}
	}

	// 4. The numbers, from the stored rows and the samples.
	var q05, q95, firstMs, lastMs float64
	var count uint64
	since := serveStart.UnixMilli()
	if err := ingestTotalsSQL.QueryRow(ctx, r.conn, chstorage.Args{"since_ms": since}).Scan(&count, &q05, &q95, &firstMs, &lastMs); err != nil {
		return t, fmt.Errorf("count rows: %w", err)
	}
	var dlq uint64
	_ = deadLettersSinceSQL.QueryRow(ctx, r.conn, chstorage.Args{"since": serveStart.Add(-time.Second)}).Scan(&dlq)
	var alerts uint64
	_ = alertsSinceSQL.QueryRow(ctx, r.conn, chstorage.Args{"since_ms": since}).Scan(&alerts)
	t.Events, t.DeadLettered, t.Alerts = int64(count), int64(dlq), int64(alerts)
	if q95 > q05 {
		t.WindowSeconds = (q95 - q05) / 1000
		t.EventsPerSecond = 0.9 * float64(count) / t.WindowSeconds
	}
	lastRow := time.UnixMilli(int64(lastMs))
	if d := lastRow.Sub(serveStart).Seconds(); d > 0 {
		t.FromStartPerSecond = float64(count) / d
	}
	t.StartupSeconds = time.UnixMilli(int64(firstMs)).Sub(serveStart).Seconds()
	t.DetectCatchUpSeconds = math.Max(0, doneAt.Sub(lastRow).Seconds())
	if d := doneAt.Sub(serveStart).Seconds(); d > 0 {
		t.WithDetectPerSecond = float64(count) / d
	}
	win := r.sampler.between(time.UnixMilli(int64(q05)), time.UnixMilli(int64(q95)))
	if len(win) >= 2 {
		a, b := win[0], win[len(win)-1]
		secs := b.at.Sub(a.at).Seconds()
		rows := b.rows - a.rows
		if rows > 0 && secs > 0 {
			t.ServeCPUPerMillion = (b.serveCPU - a.serveCPU) / rows * 1e6
			t.ClickHouseCPUPerMillion = (b.chCPU - a.chCPU) / rows * 1e6
			t.KafkaCPUPerMillion = (b.kafkaCPU - a.kafkaCPU) / rows * 1e6
			t.ServeCores = (b.serveCPU - a.serveCPU) / secs
			t.ClickHouseCores = (b.chCPU - a.chCPU) / secs
			t.KafkaCores = (b.kafkaCPU - a.kafkaCPU) / secs
			t.HarnessCores = (b.benchCPU - a.benchCPU) / secs
			t.MachineBusyCores = (b.busy - a.busy) / secs
			t.OtherCores = math.Max(0, t.MachineBusyCores-t.ServeCores-t.ClickHouseCores-t.KafkaCores-t.HarnessCores)
		}
		var rates []float64
		for i, j := 0, 0; i < len(win); i = j {
			for j = i + 1; j < len(win) && win[j].at.Sub(win[i].at) < 10*time.Second; j++ {
			}
			if j < len(win) {
				rates = append(rates, (win[j].rows-win[i].rows)/win[j].at.Sub(win[i].at).Seconds())
			}
		}
		if len(rates) > 0 {
			slices.Sort(rates)
			t.Rate10sMin, t.Rate10sMedian, t.Rate10sMax = rates[0], rates[len(rates)/2], rates[len(rates)-1]
		}
	}
	all := r.sampler.between(serveStart, doneAt)
	for _, s := range all {
		t.PeakRSSMiB = math.Max(t.PeakRSSMiB, float64(s.rss)/(1<<20))
		t.Timeline = append(t.Timeline, [4]float64{math.Round(s.at.Sub(serveStart).Seconds()*10) / 10, s.rows,
			math.Round(s.serveCPU*100) / 100, math.Round(float64(s.rss) / (1 << 20))})
	}
	if len(all) > 0 && count > 0 {
		t.ServeCPUPerMillionTotal = all[len(all)-1].serveCPU / float64(count) * 1e6
	}
	r.logger.Info("throughput measured", "events_per_s", int64(t.EventsPerSecond), "window_s", int64(t.WindowSeconds),
		"serve_cpu_s_per_million", fmt.Sprintf("%.1f", t.ServeCPUPerMillion), "peak_rss_mib", int64(t.PeakRSSMiB))
	return t, nil
}

// ratePhase offers records at a fixed rate and measures freshness and
// detection latency (and, at Options.QueryRate, the analyst queries).
func (r *run) ratePhase(ctx context.Context, rate float64) error {
	d := r.o.RateDuration
	ph := RatePhase{Name: fmt.Sprintf("%.0f/s", rate), OfferedRate: rate}
	segs := r.tl.next(rateFeed(rate, d), r.o.Workers)
	r.logger.Info("generating a rate feed", "rate", rate, "records", rateFeed(rate, d))
	start := time.Now()
	p, _, err := r.gen.generatePool(ctx, r.dir, fmt.Sprintf("rate-%.0f", rate), segs, nil)
	if err != nil {
		return err
	}
	defer p.close()
	ph.GenerateSeconds = time.Since(start).Seconds()
	if _, ok, err := r.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	} else if !ok {
		r.note("rate %.0f/s: started with a backlog (the previous phase had not drained after 2m)", rate)
	}
	r.waitMerges(ctx, time.Minute)
	m0, err := r.srv.scrape(ctx)
	if err != nil {
		return err
	}
	s0 := r.sampler.take()
	var queries chan QueryPhase
	qctx, stopQueries := context.WithCancel(ctx)
	defer stopQueries()
	if rate == r.o.QueryRate {
		queries = make(chan QueryPhase, 1)
		go func() {
			queries <- r.runQueries(qctx, "ingest "+ph.Name, 0)
		}()
	}
	r.logger.Info("offering a fixed rate", "rate", rate, "for", d)
	pr, err := producePaced(ctx, r.bc, p, rate, d)
	stopQueries()
	if err != nil {
		return err
	}
	if queries != nil {
		r.res.Queries = append(r.res.Queries, <-queries)
	}
	produced := time.Now()
	drain, drained, err := r.waitDrained(ctx, max(2*time.Minute, 2*d))
	if err != nil {
		return err
	}
	s1 := r.sampler.take()
	m1, err := r.srv.scrape(ctx)
	if err != nil {
		return err
	}
	ph.Sent, ph.Seconds = pr.Sent, float64(pr.EndMs-pr.StartMs)/1000
	if ph.Seconds > 0 {
		ph.AchievedRate = float64(pr.Sent) / ph.Seconds
	}
	if pr.Exhausted {
		r.note("rate %.0f/s: the generated feed ran out after %d records", rate, pr.Sent)
	}
	ph.DrainSeconds = drain.Seconds()
	// Sustainable: everything consumed within a few seconds of the end and
	// the producer kept the pace.
	ph.Sustainable = drained && drain < 5*time.Second && ph.AchievedRate >= 0.97*rate
	if secs := s1.at.Sub(s0.at).Seconds(); secs > 0 {
		ph.ServeCores = (s1.serveCPU - s0.serveCPU) / secs
		ph.ClickHouseCores = (s1.chCPU - s0.chCPU) / secs
		ph.KafkaCores = (s1.kafkaCPU - s0.kafkaCPU) / secs
		ph.HarnessCores = (s1.benchCPU - s0.benchCPU) / secs
		ph.MachineCores = (s1.busy - s0.busy) / secs
		ph.OtherCores = math.Max(0, ph.MachineCores-ph.ServeCores-ph.ClickHouseCores-ph.KafkaCores-ph.HarnessCores)
	}
	for _, s := range r.sampler.between(s0.at, s1.at) {
		ph.PeakRSSMiB = math.Max(ph.PeakRSSMiB, float64(s.rss)/(1<<20))
	}

	// Freshness: produced (received_ms, stamped at produce time) →
	// inserted into ClickHouse (inserted_ms).
	rows, err := freshnessSQL.Query(ctx, r.conn, chstorage.Args{"from_ms": pr.StartMs, "to_ms": pr.EndMs})
	if err != nil {
		return fmt.Errorf("freshness: %w", err)
	}
	var fresh []float64
	for rows.Next() {
		var v float64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		fresh = append(fresh, v)
	}
	rows.Close()
	ph.Stored = int64(len(fresh))
	ph.Freshness = distOf(fresh)

	// Detection: produced (source_received_ms) → alert produced
	// (detected_ms), first revision of each alert.
	rows, err = detectionLatencySQL.Query(ctx, r.conn, chstorage.Args{"from_ms": pr.StartMs, "to_ms": pr.EndMs})
	if err != nil {
		return fmt.Errorf("detection latency: %w", err)
	}
	byDet := map[string][]float64{}
	var det []float64
	for rows.Next() {
		var name string
		var v float64
		if err := rows.Scan(&name, &v); err != nil {
			rows.Close()
			return err
		}
		det = append(det, v)
		byDet[name] = append(byDet[name], v)
	}
	rows.Close()
	ph.Detection = distOf(det)
	ph.DetectionByDet = map[string]Dist{}
	for k, v := range byDet {
		ph.DetectionByDet[k] = distOf(v)
	}
	h := m1.histogram("keyfleet_detect_latency_seconds").minus(m0.histogram("keyfleet_detect_latency_seconds"))
	ph.DetectionMetric = Dist{Count: int(h.total()), P50: h.quantile(0.5), P95: h.quantile(0.95), P99: h.quantile(0.99)}
	r.res.Rates = append(r.res.Rates, ph)
	r.logger.Info("rate phase measured", "rate", rate, "achieved", int64(ph.AchievedRate),
		"freshness_p99_ms", ph.Freshness.P99, "detection_p99_ms", ph.Detection.P99, "alerts", ph.Detection.Count,
		"drain", drain.Round(time.Millisecond), "since_produced", time.Since(produced).Round(time.Millisecond))
	return nil
}

// registerOnly publishes the fleet's initial credential records but not the
// lifecycle changes of one simulator segment: the feed's segments are
// independent simulations of the same fleet, and one segment's revocations
// would make another's later uses look like uses after revocation.
type registerOnly struct{ sim.Registrar }

func (registerOnly) Change(context.Context, *event.Credential) error { return nil }

// waitMerges waits (up to limit) until ClickHouse runs no merges in the
// run's database, so a phase does not pay for the previous one's
// background work.
func (r *run) waitMerges(ctx context.Context, limit time.Duration) {
	r.waitMergesIn(ctx, r.chCfg.Database, limit)
}

// waitMergesIn waits until ClickHouse runs no merge in database (or limit
// passes).
func (r *run) waitMergesIn(ctx context.Context, database string, limit time.Duration) {
	conn := r.conn
	if conn == nil {
		c, err := chstorage.Open(ctx, r.serverConfig())
		if err != nil {
			return
		}
		defer c.Close()
		conn = c
	}
	quiet := 0
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && quiet < 2; {
		var n uint64
		if err := mergesRunningSQL.QueryRow(ctx, conn, chstorage.Args{"database": database}).Scan(&n); err != nil {
			return
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if sleep(ctx, 500*time.Millisecond) != nil {
			return
		}
	}
}

// rateFeed is the number of records generated for a phase at rate for d.
func rateFeed(rate float64, d time.Duration) int64 {
	return int64(rate*d.Seconds()*1.03) + 5000
}

// revocation issues credentials through the API, lets the simulated
// gateways apply them, revokes the subjects at a steady pace and measures
// the latency from the control plane's tables.
func (r *run) revocation(ctx context.Context) error {
	o := r.o
	rv := &Revocation{}
	r.res.Revocation = rv
	if _, _, err := r.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	r.waitMerges(ctx, time.Minute)
	m0, err := r.srv.scrape(ctx)
	if err != nil {
		return err
	}
	// 1. Issue one resident credential per bench subject (entrances,
	// garages and amenities of one site each), in one bulk request, each
	// with its phone's attestation (for a challenge keyfleet issued).
	reqs := make([]control.CredentialRequest, o.Revocations)
	for i := range reqs {
		subject := fmt.Sprintf("kfbench-%s-%05d", r.id, i)
		var ch control.ChallengeResponse
		if err := r.srv.call(ctx, http.MethodPost, "/v1/attestation/challenge",
			control.ChallengeRequest{DeviceID: "dev-" + subject}, &ch); err != nil {
			return err
		}
		raw, err := base64.StdEncoding.DecodeString(ch.Challenge)
		if err != nil {
			return fmt.Errorf("attestation challenge: %w", err)
		}
		ev, err := r.ca.At(time.Now()).Mint(attest.FormatAppleAppAttest, attesttest.Options{Challenge: raw})
		if err != nil {
			return err
		}
		reqs[i] = control.CredentialRequest{SubjectID: subject, Role: "resident",
			SiteID: r.fleet.Sites[i%len(r.fleet.Sites)].ID, DeviceID: "dev-" + subject,
			Attestation: &control.AttestationInput{Format: attest.FormatAppleAppAttest,
				Evidence: base64.StdEncoding.EncodeToString(ev), Challenge: ch.Challenge}, Reason: "keyfleet bench"}
	}
	start := time.Now()
	var pr control.ProvisionResponse
	if err := r.srv.call(ctx, http.MethodPost, "/v1/credentials:bulk", reqs, &pr, "Idempotency-Key", "kfbench-"+r.id); err != nil {
		return err
	}
	if pr.Rejected > 0 {
		return fmt.Errorf("issue credentials: %d rejected: %+v", pr.Rejected, pr.Failures)
	}
	for {
		var st control.RequestStatus
		if err := r.srv.call(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(pr.RequestID), nil, &st); err != nil {
			return err
		}
		if st.Status == "completed" {
			break
		}
		if st.Status != control.StatusPending {
			return fmt.Errorf("issue credentials: request %s: %+v", st.Status, st.Failures)
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("issue credentials: still pending after 2m: %v", st.Counts)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	rv.Credentials = pr.Accepted
	rv.IssueSecs = time.Since(start).Seconds()
	// 2. Let the locks apply the grants (a revocation queued behind a
	// grant on the same lock would count the grant's delay).
	grantsApplied := func(m metrics) bool {
		cmds := m.sum("keyfleet_control_lock_commands_total", `type="grant"`) - m0.sum("keyfleet_control_lock_commands_total", `type="grant"`)
		acks := m.sum("keyfleet_control_lock_acks_total", `type="grant"`) - m0.sum("keyfleet_control_lock_acks_total", `type="grant"`)
		return cmds > 0 && acks >= cmds
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		m, err := r.srv.scrape(ctx)
		if err != nil {
			return err
		}
		if grantsApplied(m) {
			break
		}
		if time.Now().After(deadline) {
			r.note("revocation: not every grant was acknowledged after 2m; revocations may queue behind them")
			break
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}

	// 3. Revoke the subjects, evenly spread.
	var ids []string
	r.logger.Info("revoking", "subjects", len(reqs), "over", o.RevocationSpread)
	every := o.RevocationSpread / time.Duration(len(reqs))
	start = time.Now()
	for i, q := range reqs {
		if err := sleep(ctx, time.Until(start.Add(time.Duration(i)*every))); err != nil {
			return err
		}
		var out control.SubjectRevokeResponse
		if err := r.srv.call(ctx, http.MethodPost, "/v1/subjects/"+url.PathEscape(q.SubjectID)+":revoke",
			map[string]string{"reason": "keyfleet bench"}, &out); err != nil {
			return err
		}
		ids = append(ids, out.RevocationID)
	}
	rv.Revocations = len(ids)

	// 4. Wait for every lock's ack to be recorded (lock_acks), then read
	// the control plane's tables.
	var revs, want, got uint64
	for deadline := time.Now().Add(max(2*time.Minute, 4*o.RevocationSpread)); ; {
		if err := revocationProgressSQL.QueryRow(ctx, r.conn, chstorage.Args{"ids": ids}).Scan(&revs, &want); err != nil {
			return err
		}
		if err := revocationAcksSQL.QueryRow(ctx, r.conn, chstorage.Args{"ids": ids}).Scan(&got); err != nil {
			return err
		}
		if int(revs) >= rv.Revocations && got >= want {
			break
		}
		if time.Now().After(deadline) {
			rv.Note = fmt.Sprintf("%d of %d lock acks (of %d of %d revocations) recorded when the harness stopped waiting",
				got, want, revs, rv.Revocations)
			r.note("revocation: %s", rv.Note)
			break
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	return r.revocationLatency(ctx, rv, ids)
}

// revocationLatency reads revocation_requests, revocation_locks and
// lock_acks and splits the latency into keyfleet's and the gateways' parts.
func (r *run) revocationLatency(ctx context.Context, rv *Revocation, ids []string) error {
	requested := map[string]int64{}
	rows, err := revocationRequestsSQL.Query(ctx, r.conn, chstorage.Args{"ids": ids})
	if err != nil {
		return fmt.Errorf("revocation requests: %w", err)
	}
	for rows.Next() {
		var id string
		var ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			rows.Close()
			return err
		}
		requested[id] = ms
	}
	rows.Close()
	type ack struct{ received, applied, acked int64 }
	acks := map[string]ack{}
	rows, err = revocationLockAcksSQL.Query(ctx, r.conn, chstorage.Args{"ids": ids})
	if err != nil {
		return fmt.Errorf("lock acks: %w", err)
	}
	for rows.Next() {
		var id string
		var a ack
		if err := rows.Scan(&id, &a.received, &a.applied, &a.acked); err != nil {
			rows.Close()
			return err
		}
		acks[id] = a
	}
	rows.Close()
	rows, err = revocationLocksSQL.Query(ctx, r.conn, chstorage.Args{"ids": ids})
	if err != nil {
		return fmt.Errorf("revocation locks: %w", err)
	}
	type revAgg struct {
		lastApplied, lastAcked int64
		worstShare             float64
		pending                bool
	}
	revs := map[string]*revAgg{}
	var gw, share, queue, delivery, tracking []float64
	gwByVendor := map[string][]float64{}
	for rows.Next() {
		var rev, vendor, cmd string
		var issued int64
		if err := rows.Scan(&rev, &vendor, &cmd, &issued); err != nil {
			rows.Close()
			return err
		}
		req, ok := requested[rev]
		if !ok {
			continue
		}
		rv.Locks++
		ag := revs[rev]
		if ag == nil {
			ag = &revAgg{}
			revs[rev] = ag
		}
		a, ok := acks[cmd]
		if !ok {
			ag.pending = true
			continue
		}
		rv.Acked++
		s := float64((a.received - req) + (a.acked - a.applied))
		gw = append(gw, float64(a.applied-a.received))
		gwByVendor[vendor] = append(gwByVendor[vendor], float64(a.applied-a.received))
		share = append(share, s)
		queue = append(queue, float64(issued-req))
		delivery = append(delivery, float64(a.received-issued))
		tracking = append(tracking, float64(a.acked-a.applied))
		ag.lastApplied = max(ag.lastApplied, a.applied)
		ag.lastAcked = max(ag.lastAcked, a.acked)
		ag.worstShare = math.Max(ag.worstShare, s)
	}
	rows.Close()
	var total, recorded, perRev []float64
	for id, ag := range revs {
		if ag.pending {
			continue
		}
		total = append(total, float64(ag.lastApplied-requested[id]))
		recorded = append(recorded, float64(ag.lastAcked-requested[id]))
		perRev = append(perRev, ag.worstShare)
	}
	rv.Total, rv.TotalRecorded = distOf(total), distOf(recorded)
	rv.Gateway, rv.KeyfleetPerLock, rv.KeyfleetPerRevocation = distOf(gw), distOf(share), distOf(perRev)
	rv.Queueing, rv.Delivery, rv.AckTracking = distOf(queue), distOf(delivery), distOf(tracking)
	rv.GatewayByVendor = map[string]Dist{}
	for v, ds := range gwByVendor {
		rv.GatewayByVendor[v] = distOf(ds)
	}
	r.logger.Info("revocation measured", "revocations_with_locks", len(revs), "locks", rv.Locks, "acked", rv.Acked,
		"total_p99_ms", rv.Total.P99, "keyfleet_share_p99_ms", rv.KeyfleetPerRevocation.P99)
	return nil
}

// analystQuery is one of the analysts' common queries; path builds a
// request from sampled ids and the data's time range.
type analystQuery struct {
	name string
	path func(q *queryIDs, i int) string
}

// queryIDs are ids sampled from the stored events, and the end of the data
// (queries ask for "the last N days" of the data: the feed's event times
// are not the wall clock).
type queryIDs struct {
	subjects, doors, sites []string
	endMs                  int64
}

func (q *queryIDs) since(days int) string {
	return "from=" + strconv.FormatInt(q.endMs-int64(days)*24*3600*1000, 10) + "&to=" + strconv.FormatInt(q.endMs, 10)
}

func pick(ids []string, i int) string {
	if len(ids) == 0 {
		return "none"
	}
	return url.QueryEscape(ids[(i*7919)%len(ids)])
}

var analystQueries = []analystQuery{
	{"subject_events_30d", func(q *queryIDs, i int) string {
		return "/v1/events?subject=" + pick(q.subjects, i) + "&" + q.since(30) + "&limit=100"
	}},
	{"door_events_1d", func(q *queryIDs, i int) string {
		return "/v1/events?door=" + pick(q.doors, i) + "&" + q.since(1) + "&limit=100"
	}},
	{"site_summary_hourly_7d", func(q *queryIDs, i int) string {
		return "/v1/events/summary?site=" + pick(q.sites, i) + "&bucket=hour&by=outcome&" + q.since(7)
	}},
	{"fleet_summary_hourly_7d", func(q *queryIDs, _ int) string {
		return "/v1/events/summary?bucket=hour&by=action&" + q.since(7)
	}},
	{"top_denied_subjects_30d", func(q *queryIDs, _ int) string {
		return "/v1/events/summary?outcome=denied&by=subject&bucket=all&top=10&" + q.since(30)
	}},
	{"top_denied_subjects_30d_daily", func(q *queryIDs, _ int) string {
		return "/v1/events/summary?outcome=denied&by=subject&bucket=day&top=10&" + q.since(30)
	}},
	{"subject_timeline_7d", func(q *queryIDs, i int) string {
		return "/v1/subjects/" + pick(q.subjects, i) + "/timeline?" + q.since(7) + "&limit=100"
	}},
	{"site_alerts_open", func(q *queryIDs, i int) string {
		return "/v1/alerts?status=open&site=" + pick(q.sites, i) + "&limit=50"
	}},
	{"fleet_alerts_open", func(*queryIDs, int) string {
		return "/v1/alerts?status=open&limit=50"
	}},
}

// sampleIDs reads ids to query for from the stored events.
func (r *run) sampleIDs(ctx context.Context) (*queryIDs, error) {
	q := &queryIDs{}
	if err := latestEventSQL.QueryRow(ctx, r.conn, nil).Scan(&q.endMs); err != nil {
		return nil, fmt.Errorf("sample ids: %w", err)
	}
	for _, c := range []struct {
		col string
		dst *[]string
	}{{"subject_id", &q.subjects}, {"door_id", &q.doors}, {"site_id", &q.sites}} {
		rows, err := sampleIDsSQL.Query(ctx, r.conn, chstorage.Args{"column": c.col, "since_ms": q.endMs - 24*3600*1000})
		if err != nil {
			return nil, fmt.Errorf("sample ids: %w", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			*c.dst = append(*c.dst, v)
		}
		rows.Close()
	}
	return q, nil
}

// runQueries runs each analyst query rounds times (0: until ctx ends) and
// reports their latency; a route missing from this build is "unavailable".
func (r *run) runQueries(ctx context.Context, name string, rounds int) QueryPhase {
	ph := QueryPhase{Name: name}
	ids, err := r.sampleIDs(ctx)
	if err != nil {
		r.note("queries %s: %v", name, err)
		return ph
	}
	lat := make([][]float64, len(analystQueries))
	res := make([]QueryResult, len(analystQueries))
	for i, aq := range analystQueries {
		res[i] = QueryResult{Name: aq.name, Example: aq.path(ids, 0), Status: "ok"}
	}
	for round := 0; rounds == 0 || round < rounds; round++ {
		ran := false
		for i, aq := range analystQueries {
			if res[i].Status == "unavailable" {
				continue
			}
			if ctx.Err() != nil {
				break
			}
			t0 := time.Now()
			code, _, err := r.srv.do(ctx, http.MethodGet, aq.path(ids, round), nil)
			d := time.Since(t0)
			switch {
			case err != nil && ctx.Err() != nil:
			case err != nil || code >= 500 || code == http.StatusBadRequest:
				res[i].Errors++
			case code == http.StatusNotFound && round == 0 && len(lat[i]) == 0:
				res[i].Status = "unavailable"
			default:
				lat[i] = append(lat[i], float64(d.Microseconds())/1000)
				ran = true
			}
		}
		if !ran || ctx.Err() != nil {
			break
		}
	}
	for i := range res {
		res[i].Latency = distOf(lat[i])
		if res[i].Status == "ok" && res[i].Errors > 0 {
			res[i].Status = "errors"
		}
	}
	ph.Queries = res
	return ph
}

func (r *run) queriesIdle(ctx context.Context) error {
	if _, _, err := r.waitDrained(ctx, 2*time.Minute); err != nil {
		return err
	}
	r.waitMerges(ctx, time.Minute)
	r.logger.Info("analyst queries, idle", "rounds", r.o.QueryRounds)
	r.res.Queries = append(r.res.Queries, r.runQueries(ctx, "idle", r.o.QueryRounds))
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
