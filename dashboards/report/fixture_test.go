package report

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/pipeline"
)

// The fixed data set of the report tests: five weeks (2026-W43..W47) of a
// two-site fleet, built deterministically, with re-delivered duplicates in
// access_events and several versions of one alert, so the report's counting
// must be dedup-safe to match the goldens.
var (
	fixtureWeek = Week{2026, 47}
	fixtureNow  = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
)

var (
	accessCols = pipeline.AccessColumns
	credCols   = []string{"credential_id", "seq", "ts", "ts_ms", "op", "state", "prev_state", "subject_id", "role", "site_id",
		"device_id", "attested", "break_glass", "exception", "valid_from_ms", "valid_until_ms", "issuer", "approval_rule",
		"requested_ms", "issued_ms", "revocation_id"}
	alertCols = []string{"alert_id", "version", "detector", "severity", "subject_id", "credential_id", "door_id", "site_id",
		"ts", "ts_ms", "window_start_ms", "window_end_ms", "observed", "threshold", "baseline", "evidence",
		"explanation", "suggested_action", "status"}
)

type fixture struct {
	access, creds, alerts, dead, revs, revLocks, acks, leavers [][]any
	escalations, drills, exceptions                            [][]any
	n                                                          int
}

func (f *fixture) event(at time.Time, vendor, site, door, subject, cred, action, outcome string, dup bool) {
	f.n++
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("fixture-event-%d", f.n)))
	ms := at.UnixMilli()
	row := []any{id, at.UTC().Truncate(time.Second), ms, ms + 700, vendor, site, site + "-z", door, "lock-" + door,
		subject, cred, "", "attested", action, outcome, "phone_nfc", "", "", uint8(0), "", ms + 900}
	f.access = append(f.access, row)
	if dup { // a re-delivery: same event id, not yet merged away
		f.access = append(f.access, row)
	}
}

func (f *fixture) cred(id string, seq uint64, at time.Time, op, state, subject, role, site string, exception, bg uint8,
	validUntil, requested, issued int64) {
	f.creds = append(f.creds, []any{id, seq, at.UTC().Truncate(time.Second), at.UnixMilli(), op, state, "", subject, role, site,
		"dev-" + id, uint8(1), bg, exception, int64(0), validUntil, "manager-1", "one_approver", requested, issued, ""})
}

func (f *fixture) alert(id string, version uint64, at time.Time, det, sev, subject, door, site, status string) {
	ms := at.UnixMilli()
	f.alerts = append(f.alerts, []any{id, version, det, sev, subject, "", door, site, at.UTC().Truncate(time.Second), ms,
		ms - 3600_000, ms, 9.0, 5.0, 2.0, []string{}, "fixture alert", "look", status})
}

// exception adds a version of an exception of the register.
func (f *fixture) exception(r exception.Record) {
	raw, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	at := time.UnixMilli(r.TsMs)
	f.exceptions = append(f.exceptions, []any{r.ID, r.Version, at.UTC().Truncate(time.Second), r.TsMs, r.Op, r.Actor, string(r.Kind),
		r.Reason, string(r.Status), r.Scope.SiteID, r.StartMs, r.ExpiryMs, r.ReviewMs, string(raw), r.TsMs})
}

// registerFixture is the exception register of the data set, as of W47's end
// (2026-11-23): a lock exception at site-a due for review, a door
// exception at site-b recorded in W47 and expiring, a policy exception at
// site-a expired but open, a credential exception at site-b closed in W47,
// and one recorded after the week.
func (f *fixture) registerFixture() {
	day := func(m time.Month, d int) int64 { return time.Date(2026, m, d, 9, 0, 0, 0, time.UTC).UnixMilli() }
	rec := func(id string, kind exception.Kind, scope exception.Scope, reason string, created, expiry, review int64) exception.Record {
		return exception.Record{ID: id, Status: exception.StatusOpen, Version: uint64(created), Op: exception.OpCreate, Actor: "manager-1",
			CreatedMs: created, CreatedBy: "manager-1", TsMs: created, Exception: exception.Exception{Kind: kind, Scope: scope,
				Reason: reason, Approvers: []string{"ciso"}, CompensatingControl: "guard patrol", StartMs: created, ExpiryMs: expiry, ReviewMs: review}}
	}
	f.exception(rec("ex-lock-a", exception.KindLock, exception.Scope{SiteID: "site-a", Vendor: "legacy", LockID: "P1/R1"}, "legacy_hardware",
		day(9, 1), day(3, 1)+365*24*3600_000, day(11, 20)))
	f.exception(rec("ex-door-b", exception.KindDoor, exception.Scope{SiteID: "site-b", DoorID: "site-b-door-2"}, "manual_override",
		day(11, 17), day(11, 27), 0))
	f.exception(rec("ex-pol-a", exception.KindPolicy, exception.Scope{SiteID: "site-a", Role: "contractor", Capability: "schedules"},
		"business_need", day(10, 1), day(11, 20), 0))
	c := rec("ex-cred-b", exception.KindCredential, exception.Scope{SiteID: "site-b", SubjectID: "subj-x2"}, "business_need",
		day(10, 10), day(12, 31), 0)
	f.exception(c)
	c.Version, c.Op, c.Status, c.CloseReason, c.TsMs = uint64(day(11, 18)), exception.OpClose, exception.StatusClosed, "no longer needed", day(11, 18)
	f.exception(c)
	f.exception(rec("ex-late", exception.KindDoor, exception.Scope{SiteID: "site-a", DoorID: "site-a-door-0"}, "manual_override",
		day(11, 23)+4*3600_000, day(12, 23), 0))
}

func buildFixture() *fixture {
	f := &fixture{}
	sites := []string{"site-a", "site-b"}
	vendors := []string{"matter", "nuki", "schlage"}
	for wi := 0; wi < 5; wi++ {
		w := fixtureWeek.Add(wi - 4)
		start := w.Start()
		for si, site := range sites {
			for vi, vendor := range vendors {
				door := fmt.Sprintf("%s-door-%d", site, vi)
				granted := 6 + 2*wi + si
				for k := 0; k < granted; k++ {
					at := start.Add(time.Duration(k*11+vi*3+si) * time.Hour)
					subj := fmt.Sprintf("subj-%d", (k+vi)%4)
					cred := fmt.Sprintf("cred-%02d", (k+vi)%4)
					f.event(at, vendor, site, door, subj, cred, "unlock", "granted", k%5 == 0)
				}
				for k := 0; k < 1+(wi+vi)%3; k++ {
					f.event(start.Add(time.Duration(20+k*7+vi)*time.Hour), vendor, site, door, "subj-9", "", "access_denied", "denied", k == 0)
				}
				// Health events: battery and offline on the first door, jams on nuki's.
				if vi == 0 {
					for k := 0; k <= wi%3; k++ {
						f.event(start.Add(time.Duration(30+k)*time.Hour), vendor, site, door, "", "", "battery_low", "info", k == 0)
					}
					f.event(start.Add(50*time.Hour), vendor, site, door, "", "", "offline", "error", false)
				}
				if vendor == "nuki" && (wi+si)%2 == 0 {
					f.event(start.Add(60*time.Hour), vendor, site, door, "", "", "lock_jammed", "error", true)
				}
			}
		}
		// Dead letters: 2+wi per week, fleet-wide.
		for k := 0; k < 2+wi; k++ {
			at := start.Add(time.Duration(5+k*13) * time.Hour)
			f.dead = append(f.dead, []any{at.UTC().Truncate(time.Second), at.UnixMilli(), "legacy", "unparseable_payload", "bad csv",
				fmt.Sprintf("lock.events.raw/0/%d", 100*wi+k), uint32(40), "sha"})
		}
		// Credentials requested and issued this week; most get activated.
		for k := 0; k < 4+wi; k++ {
			id := fmt.Sprintf("cred-w%d-%d", wi, k)
			req := start.Add(time.Duration(10+k*5) * time.Hour)
			iss := req.Add(time.Duration(30*(k+1)+wi*60) * time.Second)
			site := sites[k%2]
			exc := uint8(0)
			if k == 1 {
				exc = 1
			}
			f.cred(id, 1, req, "request", "requested", "subj-w"+id, "resident", site, exc, 0, 0, req.UnixMilli(), 0)
			f.cred(id, 2, iss, "issue", "issued", "subj-w"+id, "resident", site, exc, 0, 0, req.UnixMilli(), iss.UnixMilli())
			if k%3 != 2 {
				act := iss.Add(2 * time.Hour)
				f.cred(id, 3, act, "activate", "active", "subj-w"+id, "resident", site, exc, 0, 0, req.UnixMilli(), iss.UnixMilli())
			}
		}
		// Revocations: 2 per week, two locks each, acknowledged after
		// (wi+1)*(j+1) seconds; W47's second one misses a lock's ack.
		for j := 0; j < 2; j++ {
			rev := fmt.Sprintf("rev-%d-%d", wi, j)
			cred := fmt.Sprintf("cred-w%d-0", wi)
			req := start.Add(time.Duration(100+j) * time.Hour)
			f.revs = append(f.revs, []any{rev, cred, "subj-x", "credential", req.UTC().Truncate(time.Second), req.UnixMilli(),
				req.UnixMilli() + 400, req.UnixMilli() + 450, "dev", uint32(2)})
			for li, lock := range []string{"lock-site-a-door-0", "lock-site-a-door-1"} {
				f.revLocks = append(f.revLocks, []any{rev, cred, "matter", lock, rev + "-" + lock, req.UTC().Truncate(time.Second), req.UnixMilli() + 500})
				if wi == 4 && j == 1 && li == 1 {
					continue // straggler
				}
				applied := req.UnixMilli() + int64((wi+1)*(j+1)*1000+li*250)
				f.acks = append(f.acks, []any{rev + "-" + lock, rev, "revoke", "matter", lock, cred, "applied", "",
					req.UTC().Truncate(time.Second), applied + 10, applied, applied + 5})
			}
			// Identity sync's leavers (W46, W47): deactivated 30 s before
			// the revocation; W47's second waits for its straggler.
			if wi >= 3 && (wi == 4 || j == 0) {
				change := req.Add(-30 * time.Second)
				f.leavers = append(f.leavers, []any{fmt.Sprintf("subj-l%d%d", wi, j), change.UnixMilli(), "deactivated", rev,
					uint32(1), change.UTC().Truncate(time.Second), req.UnixMilli()})
			}
		}
	}
	// W47's straggler (rev-4-1) was escalated past the SLA and is still
	// unconfirmed; W45's rev-2-0 was escalated and confirmed since.
	for _, e := range []struct {
		rev, cred string
		wi        int
		j         int
	}{{"rev-4-1", "cred-w4-0", 4, 1}, {"rev-2-0", "cred-w2-0", 2, 0}} {
		req := fixtureWeek.Add(e.wi - 4).Start().Add(time.Duration(100+e.j) * time.Hour)
		f.escalations = append(f.escalations, []any{e.rev, e.cred, "alert-" + e.rev, req.UnixMilli(), req.UnixMilli() + 900_000,
			uint32(1), req.UTC().Truncate(time.Second)})
	}
	// Drills: one in W45, two in W47 (a termination drill that confirmed
	// every lock, a breach drill with a straggler), none in the other weeks.
	for _, d := range []struct {
		id, scenario                   string
		wi, subjects, locks, confirmed int
		p50, p99, ticket               int64
		sessions                       string
	}{
		{"drill-w45", "termination", 2, 20, 120, 120, 900, 4200, -1, "not_configured"},
		{"drill-w47a", "termination", 4, 20, 120, 120, 700, 3100, 5200, "done"},
		{"drill-w47b", "breach", 4, 50, 300, 299, 1100, 6400, -1, "done"},
	} {
		at := fixtureWeek.Add(d.wi - 4).Start().Add(26 * time.Hour)
		if d.id == "drill-w47b" {
			at = at.Add(24 * time.Hour)
		}
		f.drills = append(f.drills, []any{d.id, d.scenario, at.UnixMilli(), at.UnixMilli() + 60_000, at.UTC().Truncate(time.Second),
			"manager-1", uint32(d.subjects), uint32(d.subjects), uint32(d.subjects), uint32(d.locks), uint32(d.confirmed),
			uint32(d.locks - d.confirmed), int64(300), int64(800), d.p50, d.p99, d.sessions, d.ticket, "{}"})
	}
	// Long-lived credentials: cred-00..03 are used every week; cred-s1 and
	// cred-s2 have been active since July and never used (stale); cred-s3
	// too, but it was used in W46 (stale before, not at W47's end).
	july := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("cred-%02d", i)
		f.cred(id, 1, july, "issue", "issued", fmt.Sprintf("subj-%d", i), "staff", "site-a", 0, 0, 0, july.UnixMilli(), july.UnixMilli())
		f.cred(id, 2, july.Add(time.Hour), "activate", "active", fmt.Sprintf("subj-%d", i), "staff", "site-a", 0, 0, 0, july.UnixMilli(), july.UnixMilli())
	}
	for i, site := range []string{"site-a", "site-b", "site-b"} {
		id := fmt.Sprintf("cred-s%d", i+1)
		f.cred(id, 1, july, "issue", "issued", "subj-s", "contractor", site, 0, 0, 0, july.UnixMilli(), july.UnixMilli())
		f.cred(id, 2, july.Add(time.Hour), "activate", "active", "subj-s", "contractor", site, 0, 0, 0, july.UnixMilli(), july.UnixMilli())
	}
	f.event(fixtureWeek.Add(-1).Start().Add(40*time.Hour), "seam", "site-b", "site-b-door-9", "subj-s", "cred-s3", "unlock", "granted", false)
	// The stored history begins in June (a lock came online), before every
	// credential: every report week has its whole history.
	f.event(time.Date(2026, 6, 15, 8, 0, 0, 0, time.UTC), "matter", "site-a", "site-a-door-0", "", "", "online", "info", false)
	// Exceptions past their end date (the expired_exception detector's
	// check): cred-x1 (an exception, used after its end) and cred-x2
	// (break-glass with an end date) ended during W47 and are still active;
	// cred-x3 ended but was revoked; cred-x4 is break-glass without an end
	// date, active since September (it ended a day later); cred-x5, a
	// guest, ended on W47's Saturday (not yet ended mid-week); cred-x6
	// ended within the detector's grace before the week's end.
	end := fixtureWeek.Start().Add(30 * time.Hour).UnixMilli()
	sep := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	f.cred("cred-x1", 1, sep, "activate", "active", "subj-x1", "contractor", "site-a", 1, 0, end, sep.UnixMilli(), sep.UnixMilli())
	f.event(time.UnixMilli(end).Add(10*time.Hour), "nuki", "site-a", "site-a-door-1", "subj-x1", "cred-x1", "unlock", "granted", false)
	f.cred("cred-x2", 1, sep, "activate", "active", "subj-x2", "emergency_responder", "site-b", 0, 1, end+3600_000, sep.UnixMilli(), sep.UnixMilli())
	f.cred("cred-x3", 1, sep, "activate", "active", "subj-x3", "guest", "site-a", 0, 0, end, sep.UnixMilli(), sep.UnixMilli())
	f.cred("cred-x3", 2, time.UnixMilli(end+60_000), "revoke", "revoked", "subj-x3", "guest", "site-a", 0, 0, end, sep.UnixMilli(), sep.UnixMilli())
	f.cred("cred-x4", 1, sep, "activate", "active", "subj-x4", "emergency_responder", "site-a", 0, 1, 0, sep.UnixMilli(), sep.UnixMilli())
	sat := fixtureWeek.Start().Add(5*24*time.Hour + 9*time.Hour).UnixMilli()
	f.cred("cred-x5", 1, sep, "activate", "active", "subj-x5", "guest", "site-b", 0, 0, sat, sep.UnixMilli(), sep.UnixMilli())
	f.cred("cred-x6", 1, sep, "activate", "active", "subj-x6", "guest", "site-a", 0, 0,
		fixtureWeek.End().Add(-30*time.Minute).UnixMilli(), sep.UnixMilli(), sep.UnixMilli())

	// Alerts.
	ws := fixtureWeek.Start()
	f.alert("a-01", 1, ws.Add(10*time.Hour), "unlock_burst", "high", "subj-1", "site-a-door-0", "site-a", "open")
	f.alert("a-02", 1, ws.Add(20*time.Hour), "unlock_burst", "medium", "subj-1", "site-a-door-1", "site-a", "open")
	f.alert("a-03", 1, ws.Add(30*time.Hour), "unlock_burst", "high", "subj-2", "site-b-door-0", "site-b", "open")
	f.alert("a-04", 1, ws.Add(40*time.Hour), "denied_storm", "medium", "subj-9", "site-b-door-1", "site-b", "open")
	f.alert("a-04", 2, ws.Add(40*time.Hour), "denied_storm", "medium", "subj-9", "site-b-door-1", "site-b", "acknowledged")
	f.alert("a-05", 1, ws.Add(50*time.Hour), "emergency_unlock", "critical", "", "site-a-door-2", "site-a", "resolved")
	f.alert("a-06", 1, ws.Add(60*time.Hour), "stale_credential", "low", "subj-s", "", "site-b", "open")
	f.alert("a-07", 1, fixtureWeek.Add(-1).Start().Add(5*time.Hour), "door_forced", "high", "", "site-a-door-1", "site-a", "resolved")
	f.alert("a-08", 1, fixtureWeek.Add(-3).Start().Add(5*time.Hour), "unlock_burst", "high", "subj-3", "site-a-door-0", "site-a", "false_positive")
	f.registerFixture()
	return f
}

// loadFixture inserts the data set into a test database.
func loadFixture(t testing.TB, conn driver.Conn) {
	t.Helper()
	f := buildFixture()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, b := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"access_events", accessCols, f.access},
		{"credential_events", credCols, f.creds},
		{"alerts", alertCols, f.alerts},
		{"dead_letters", []string{"ts", "ts_ms", "vendor", "reason", "error", "source", "payload_size", "payload_sha256"}, f.dead},
		{"revocations", []string{"revocation_id", "credential_id", "subject_id", "scope", "ts", "requested_ms", "disabled_ms",
			"session_revoked_ms", "device_id", "locks_total"}, f.revs},
		{"revocation_locks", []string{"revocation_id", "credential_id", "vendor", "lock_id", "command_id", "ts", "issued_ms"}, f.revLocks},
		{"lock_acks", []string{"command_id", "revocation_id", "type", "vendor", "lock_id", "credential_id", "status", "error",
			"ts", "received_ms", "applied_ms", "acked_ms"}, f.acks},
		{"revocation_escalations", []string{"revocation_id", "credential_id", "alert_id", "requested_ms", "escalated_ms",
			"pending_locks", "ts"}, f.escalations},
		{"drill_runs", []string{"run_id", "scenario", "started_ms", "finished_ms", "ts", "actor", "subjects", "credentials",
			"revocations", "locks", "confirmed", "stragglers", "disable_p50_ms", "disable_p99_ms", "confirm_p50_ms",
			"confirm_p99_ms", "session_state", "ticket_close_ms", "report"}, f.drills},
		{"identity_leavers", []string{"subject_id", "change_ms", "reason", "revocation_id", "credentials", "ts", "requested_ms"}, f.leavers},
		{"exceptions", chstorage.Exceptions.ColumnNames(), f.exceptions},
	} {
		require.NoError(t, chstorage.InsertRows(ctx, conn, b.table, b.cols, b.rows...), b.table)
	}
}
