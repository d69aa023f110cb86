package detect

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Detector scripts (testdata/*.txt), in the spirit of Prometheus' promqltest:
// each file loads events, advances time and expects alerts. Commands, one a
// line ('#' starts a comment):
//
//	rules <json>                      rules file (before the first event)
//	at <RFC3339> | at +<dur>          set the clock
//	cred <id> k=v...                  credential record at the clock: subject, role,
//	                                  state, device, attested, site, valid_until (+dur
//	                                  or RFC3339), break_glass
//	event k=v...                      access event(s) at the clock: subject, cred,
//	                                  device, attested, door, site, action (unlock),
//	                                  outcome (granted), method, reason, break_glass,
//	                                  id; doors=a,b or doors=svc-1..svc-12 makes one
//	                                  event per door, n=N repeats each, every=<dur>
//	                                  advances the clock after each event;
//	                                  remember=true feeds RememberGrant instead
//	                                  of Access (a restart's older replay);
//	                                  crew=k-1..k-5 makes each door opened by
//	                                  every member in turn (subject k-N,
//	                                  credential ck-N), every= after each door
//	entitle <cred> doors=a,b...       the credential's entitlement: the locks of
//	                                  those doors (Engine.Entitle)
//	repeat <N>d at <HH:MM> <cmd>[; <cmd>...]
//	                                  run commands from HH:MM on N consecutive days from
//	                                  the clock's day; the clock ends on the next day
//	advance <dur>                     move the clock and the watermark
//	batch                             run the batch checks at the clock
//	flush                             close every suppression window
//	expect none                       no alert since the last expectation
//	expect                            then one line per alert, in emission order:
//	<detector> k=v...                 subject, cred, door, site, severity, observed,
//	end                               threshold, baseline, revision, suppressed,
//	                                  evidence (count), ts (RFC3339), window_start;
//	                                  a trailing "says: <text>" wants <text> in
//	                                  the explanation
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type script struct {
	t      *testing.T
	file   string
	line   int
	rules  *Rules
	engine *Engine
	clock  time.Time
	nextID int
	got    []Alert
}

func runScript(t *testing.T, path string) {
	runScriptWith(t, path, &script{t: t, file: path, rules: DefaultRules()})
}

func runScriptWith(t *testing.T, path string, s *script) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var expect []string
	inExpect := false
	for sc.Scan() {
		s.line++
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 && !strings.HasPrefix(line, "rules") {
			line = strings.TrimSpace(line[:i])
		}
		if inExpect {
			if line == "end" {
				s.check(expect)
				inExpect, expect = false, nil
			} else if line != "" {
				expect = append(expect, line)
			}
			continue
		}
		if line == "" {
			continue
		}
		switch line {
		case "expect":
			inExpect = true
			continue
		case "expect none":
			s.check(nil)
			continue
		}
		s.run(line)
	}
	require.NoError(t, sc.Err())
	require.False(t, inExpect, "%s: unterminated expect block", path)
	if len(s.got) > 0 {
		t.Errorf("%s: %d alert(s) at the end were not expected:\n%s", path, len(s.got), describe(s.got))
	}
}

func (s *script) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

func (s *script) eng() *Engine {
	if s.engine == nil {
		e, err := NewEngine(s.rules, Options{BatchChecks: false})
		if err != nil {
			s.fail("engine: %v", err)
		}
		s.engine = e
	}
	return s.engine
}

func (s *script) run(line string) {
	cmd, rest, _ := strings.Cut(line, " ")
	switch cmd {
	case "rules":
		if s.engine != nil {
			s.fail("rules must come before the first event")
		}
		r, err := ParseRules([]byte(rest))
		if err != nil {
			s.fail("%v", err)
		}
		s.rules = r
	case "at":
		s.clock = s.parseTime(rest)
	case "advance":
		d, err := time.ParseDuration(rest)
		if err != nil {
			s.fail("advance: %v", err)
		}
		s.clock = s.clock.Add(d)
		s.got = s.eng().Advance(s.got, s.clock.UnixMilli())
	case "batch":
		s.got = s.eng().Batch(s.got, s.clock.UnixMilli(), nil, 0)
	case "flush":
		s.got = s.eng().Flush(s.got)
	case "cred":
		s.cred(rest)
	case "event":
		s.events(rest)
	case "entitle":
		s.entitle(rest)
	case "repeat":
		s.repeat(rest)
	default:
		s.fail("unknown command %q", cmd)
	}
}

func (s *script) parseTime(v string) time.Time {
	if strings.HasPrefix(v, "+") {
		d, err := time.ParseDuration(v[1:])
		if err != nil {
			s.fail("time %q: %v", v, err)
		}
		return s.clock.Add(d)
	}
	tm, err := time.Parse(time.RFC3339, v)
	if err != nil {
		s.fail("time %q: %v", v, err)
	}
	return tm
}

func (s *script) kv(args string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(args) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			s.fail("want key=value, got %q", f)
		}
		m[k] = v
	}
	return m
}

func (s *script) cred(args string) {
	id, rest, _ := strings.Cut(args, " ")
	kv := s.kv(rest)
	rec := event.Credential{
		Record: "credential", CredentialID: id, SubjectID: kv["subject"], State: kv["state"],
		DeviceID: kv["device"], Attested: kv["attested"] == "true", Role: kv["role"], SiteID: kv["site"],
		TsMs: s.clock.UnixMilli(), BreakGlass: kv["break_glass"] == "true",
	}
	if v := kv["valid_until"]; v != "" {
		rec.ValidUntilMs = s.parseTime(v).UnixMilli()
	}
	if !event.Valid(event.States, rec.State) {
		s.fail("cred %s: state %q is not a lifecycle state", id, rec.State)
	}
	s.got = s.eng().Credential(s.got, &rec)
}

// doorList expands "a,b" and "svc-1..svc-12".
func (s *script) doorList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		lo, hi, ok := strings.Cut(part, "..")
		if !ok {
			out = append(out, part)
			continue
		}
		i := strings.LastIndexAny(lo, "-_")
		from, err1 := strconv.Atoi(lo[i+1:])
		to, err2 := strconv.Atoi(hi[i+1:])
		if err1 != nil || err2 != nil || i < 0 || lo[:i] != hi[:i] {
			s.fail("door range %q: want prefix-N..prefix-M", part)
		}
		for n := from; n <= to; n++ {
			out = append(out, fmt.Sprintf("%s%d", lo[:i+1], n))
		}
	}
	return out
}

func (s *script) events(args string) {
	kv := s.kv(args)
	doors := []string{kv["door"]}
	if v := kv["doors"]; v != "" {
		doors = s.doorList(v)
	}
	n := 1
	if v := kv["n"]; v != "" {
		n, _ = strconv.Atoi(v)
	}
	var every time.Duration
	if v := kv["every"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.fail("every: %v", err)
		}
		every = d
	}
	def := func(k, d string) string {
		if v, ok := kv[k]; ok {
			return v
		}
		return d
	}
	type who struct{ subject, cred string }
	people := []who{{kv["subject"], kv["cred"]}}
	if v := kv["crew"]; v != "" {
		people = people[:0]
		for _, m := range s.doorList(v) {
			people = append(people, who{m, "c" + m})
		}
	}
	for _, door := range doors {
		for range n {
			for _, p := range people {
				s.nextID++
				ev := event.Access{
					EventID: def("id", fmt.Sprintf("e%d", s.nextID)), TsMs: s.clock.UnixMilli(), ReceivedMs: s.clock.UnixMilli(),
					Vendor: "matter", SiteID: def("site", "site-1"), DoorID: door, LockID: "lock-" + door,
					SubjectID: p.subject, CredentialID: p.cred, DeviceID: kv["device"],
					Attested: def("attested", "unknown"), Action: def("action", "unlock"), Outcome: def("outcome", "granted"),
					Method: def("method", "phone_nfc"), Reason: kv["reason"], BreakGlass: kv["break_glass"] == "true",
				}
				if kv["remember"] == "true" {
					s.got = s.eng().RememberGrant(s.got, &ev)
				} else {
					s.got = s.eng().Access(s.got, &ev)
				}
			}
			s.clock = s.clock.Add(every)
		}
	}
}

// entitle records a credential's entitlement: the locks of the doors named
// (events put door d on lock "lock-d" of vendor matter).
func (s *script) entitle(args string) {
	id, rest, _ := strings.Cut(args, " ")
	kv := s.kv(rest)
	ent := Entitlement{CredentialID: id}
	for _, d := range s.doorList(kv["doors"]) {
		ent.Locks = append(ent.Locks, EntitledLock{Vendor: "matter", LockID: "lock-" + d})
	}
	s.eng().Entitle(&ent)
}

func (s *script) repeat(args string) {
	f := strings.Fields(args)
	if len(f) < 4 || !strings.HasSuffix(f[0], "d") || f[1] != "at" {
		s.fail("want: repeat <N>d at <HH:MM> <command>")
	}
	days, err := strconv.Atoi(strings.TrimSuffix(f[0], "d"))
	if err != nil {
		s.fail("repeat: %v", err)
	}
	hm, err := time.Parse("15:04", f[2])
	if err != nil {
		s.fail("repeat: %v", err)
	}
	day0 := s.clock.Truncate(24 * time.Hour)
	inner := strings.Join(f[3:], " ")
	for d := range days {
		s.clock = day0.Add(time.Duration(d)*24*time.Hour + time.Duration(hm.Hour())*time.Hour + time.Duration(hm.Minute())*time.Minute)
		for _, c := range strings.Split(inner, ";") {
			s.run(strings.TrimSpace(c))
		}
	}
	s.clock = day0.Add(time.Duration(days) * 24 * time.Hour)
}

func (s *script) check(expect []string) {
	s.t.Helper()
	got := s.got
	s.got = nil
	if len(got) != len(expect) {
		s.fail("got %d alert(s), want %d:\n%s", len(got), len(expect), describe(got))
	}
	for i, line := range expect {
		line, says, _ := strings.Cut(line, " says: ")
		det, rest, _ := strings.Cut(line, " ")
		a := got[i]
		if says != "" && !strings.Contains(a.Explanation, says) {
			s.fail("alert %d (%s): explanation %q does not say %q", i, det, a.Explanation, says)
		}
		if a.Detector != det {
			s.fail("alert %d: got detector %s, want %s:\n%s", i, a.Detector, det, describe(got))
		}
		for k, want := range s.kv(rest) {
			if have := field(&a, k); have != want {
				s.fail("alert %d (%s): got %s=%s, want %s\n%s", i, det, k, have, want, describe(got))
			}
		}
		s.checkInvariants(&a)
	}
}

// checkInvariants holds for every alert.
func (s *script) checkInvariants(a *Alert) {
	s.t.Helper()
	require.NotEmpty(s.t, a.AlertID)
	require.NotEmpty(s.t, a.Explanation)
	require.NotEmpty(s.t, a.SuggestedAction)
	require.Equal(s.t, StatusOpen, a.Status)
	require.LessOrEqual(s.t, a.WindowStartMs, a.WindowEndMs)
	require.LessOrEqual(s.t, len(a.Evidence), MaxEvidence)
	_, err := json.Marshal(a)
	require.NoError(s.t, err)
}

func field(a *Alert, k string) string {
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	switch k {
	case "subject":
		return a.SubjectID
	case "cred":
		return a.CredentialID
	case "door":
		return a.DoorID
	case "site":
		return a.SiteID
	case "severity":
		return a.Severity
	case "observed":
		return num(a.Observed)
	case "threshold":
		return num(a.Threshold)
	case "baseline":
		return num(a.Baseline)
	case "revision":
		return strconv.Itoa(a.Revision)
	case "suppressed":
		return strconv.Itoa(a.SuppressedCount)
	case "evidence":
		return strconv.Itoa(len(a.Evidence))
	case "ts":
		return time.UnixMilli(a.TsMs).UTC().Format(time.RFC3339)
	case "window_start":
		return time.UnixMilli(a.WindowStartMs).UTC().Format(time.RFC3339)
	case "window_end":
		return time.UnixMilli(a.WindowEndMs).UTC().Format(time.RFC3339)
	case "rules_version":
		return strconv.Itoa(a.RulesVersion)
	}
	return "<unknown field " + k + ">"
}

func describe(alerts []Alert) string {
	var b strings.Builder
	for _, a := range alerts {
		fmt.Fprintf(&b, "  %s severity=%s subject=%s cred=%s door=%s observed=%g threshold=%g baseline=%g revision=%d suppressed=%d evidence=%d ts=%s\n    %s\n",
			a.Detector, a.Severity, a.SubjectID, a.CredentialID, a.DoorID, a.Observed, a.Threshold, a.Baseline,
			a.Revision, a.SuppressedCount, len(a.Evidence), time.UnixMilli(a.TsMs).UTC().Format(time.RFC3339), a.Explanation)
	}
	return b.String()
}
