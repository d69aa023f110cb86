package dashboards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/dashboards/report"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// The browser tests run the real keyfleet binary (embedded Kafka broker,
// ClickHouse from internal/testenv) fed by the fleet simulator, and drive
// Debian's headless Chromium with chromedp. Screenshots are written to
// test-artifacts/dashboards/ at the repository root.

const e2eToken = "e2e-admin-token-0123456789abcdefghijkl"

// chromiumPath finds the browser; without one the test fails under
// KEYFLEET_TEST_REQUIRE=1 (scripts/chromium.sh installs it) and skips otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYFLEET_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.Required() {
		t.Fatal("no chromium binary: run scripts/chromium.sh (make test does)")
	}
	t.Skip("no chromium binary (scripts/chromium.sh installs Debian's chromium)")
	return ""
}

// server is a running keyfleet serve.
type server struct {
	t     *testing.T
	base  string
	kafka string
}

func (s *server) get(path string, out any) int {
	s.t.Helper()
	return s.call("GET", path, "", out)
}

func (s *server) call(method, path, body string, out any) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(s.t, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}

// startFleet starts keyfleet serve on a fresh database with the simulated
// estate's registry and feeds it a day of simulated history, then a few
// seconds of live traffic.
func startFleet(t *testing.T) *server {
	t.Helper()
	_, ch := testenv.ClickHouse(t)
	bin := testenv.KeyfleetBinary(t)
	dir := t.TempDir()
	fleet := []string{"--seed", "11", "--sites", "2", "--subjects", "200"}
	registry := filepath.Join(dir, "registry.json")
	identities := filepath.Join(dir, "identities.json")
	out, err := exec.Command(bin, append(append([]string{"simulate"}, fleet...), "--registry-only", "--registry-out", registry,
		"--identities-out", identities)...).CombinedOutput()
	require.NoError(t, err, "simulate --registry-only: %s", out)

	httpAddr, kafkaAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cmd := exec.Command(bin, "serve", "--http-addr", httpAddr, "--embedded-kafka-addr", kafkaAddr,
		"--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database, "--data-dir", filepath.Join(dir, "data"),
		"--registry", registry, "--clickhouse-flush-interval", "200ms", "--access-log=false")
	cmd.Env = append(os.Environ(), "KEYFLEET_BOOTSTRAP_TOKEN="+e2eToken)
	logs := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("keyfleet serve output:\n%s", logs.String())
		}
	})
	s := &server{t: t, base: "http://" + httpAddr, kafka: kafkaAddr}
	require.Eventually(t, func() bool {
		select {
		case <-done:
			t.Fatalf("keyfleet serve exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 90*time.Second, 200*time.Millisecond, "keyfleet serve not ready")
	ids, err := os.ReadFile(identities)
	require.NoError(t, err)
	require.Equal(t, 200, s.call("POST", "/v1/subjects/identities", string(ids), nil), "load the identities as make run does")

	// The day of history ends at a fixed time of day (the last 14:00 UTC),
	// so the simulated fleet's daily rhythm looks the same whenever the test
	// runs: at night the hours before now are as quiet as the fleet's nights,
	// which made the tests depend on the time of day.
	sim := exec.Command(bin, append(append([]string{"simulate"}, fleet...), "--days", "1", "--anomaly-scale", "3",
		"--end", backfillEnd(time.Now()).Format(time.RFC3339), "--kafka-brokers", kafkaAddr, "--log-level", "warn")...)
	out, err = sim.CombinedOutput()
	require.NoError(t, err, "simulate --days 1: %s", out)
	// A few seconds of live traffic too: the overview's events/s chart shows
	// the last hour.
	live := exec.Command(bin, append(append([]string{"simulate"}, fleet...), "--rate", "40", "--duration", "5s",
		"--anomaly-scale", "0", "--kafka-brokers", kafkaAddr, "--log-level", "warn")...)
	out, err = live.CombinedOutput()
	require.NoError(t, err, "simulate --rate 40: %s", out)
	return s
}

// backfillEnd is the latest 14:00 UTC at or before now.
func backfillEnd(now time.Time) time.Time {
	now = now.UTC()
	end := time.Date(now.Year(), now.Month(), now.Day(), 14, 0, 0, 0, time.UTC)
	if end.After(now) {
		end = end.AddDate(0, 0, -1)
	}
	return end
}

// ensureAlert waits for the detectors to raise an alert from the simulated
// day; if none comes, it ingests an event that always alerts (a Matter
// ForcedUserEvent, normalized to emergency_unlock).
func ensureAlert(t *testing.T, s *server) {
	t.Helper()
	var out struct {
		Alerts []struct {
			ID string `json:"alert_id"`
		} `json:"alerts"`
	}
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if s.get("/v1/alerts?status=open&limit=1", &out) == 200 && len(out.Alerts) > 0 {
			return
		}
		time.Sleep(time.Second)
	}
	t.Log("no alert from the simulated day yet: ingesting an emergency unlock")
	payload := fmt.Sprintf(`{"nodeId":"0x0E2E","endpointId":1,"clusterId":257,"eventName":"LockOperation","eventNumber":1,`+
		`"timestampMs":%d,"priority":"critical","data":{"lockOperationType":3,"operationSource":1,"userIndex":1,"fabricIndex":1}}`,
		time.Now().UnixMilli())
	require.Equal(t, 202, s.call("POST", "/v1/ingest/matter", payload, nil))
	require.Eventually(t, func() bool {
		return s.get("/v1/alerts?status=open&limit=1", &out) == 200 && len(out.Alerts) > 0
	}, 60*time.Second, time.Second, "no alert after an emergency unlock")
}

// alertWithActiveCredential returns an open alert that names a credential
// the control plane holds as active. In this test the first such alerts are
// the batch checks' (stale_credential: active but unused), which run a
// minute after serve starts.
func alertWithActiveCredential(t *testing.T, s *server) (alertID, credentialID string) {
	t.Helper()
	var out struct {
		Alerts []struct {
			ID           string `json:"alert_id"`
			CredentialID string `json:"credential_id"`
		} `json:"alerts"`
	}
	var active struct {
		Credentials []struct {
			ID string `json:"credential_id"`
		} `json:"credentials"`
	}
	var found bool
	require.Eventually(t, func() bool {
		if s.get("/v1/alerts?status=open&limit=1000", &out) != 200 ||
			s.get("/v1/credentials?state=active&limit=10000", &active) != 200 {
			return false
		}
		ids := map[string]bool{}
		for _, c := range active.Credentials {
			ids[c.ID] = true
		}
		for _, a := range out.Alerts {
			if ids[a.CredentialID] {
				alertID, credentialID, found = a.ID, a.CredentialID, true
				return true
			}
		}
		return false
	}, 2*time.Minute, time.Second, "no open alert names an active credential")
	require.True(t, found)
	return alertID, credentialID
}

// browser is headless Chromium with a fresh profile; it collects console
// errors, uncaught exceptions and error log entries (CSP violations, failed
// loads) of every page.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
	dir    string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{ctx: ctx, dir: artifactDir(t)}
	require.NoError(t, chromedp.Do(ctx)) // starts the browser (no timeout on this first call)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, strings.TrimSpace(string(a.Value)+" "+a.Description))
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				msg = "log " + string(e.Entry.Source) + ": " + e.Entry.Text + " " + e.Entry.URL
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	}))
	_, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	require.NoError(t, err)
	return b
}

func (b *browser) takeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.errors
	b.errors = nil
	return out
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "test-artifacts", "dashboards")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	buf := run(t, b, chromedp.FullScreenshot(100))
	path := filepath.Join(b.dir, name)
	require.NoError(t, os.WriteFile(path, buf, 0o644))
	t.Logf("screenshot %s (%s)", path, time.Now().Format("15:04:05.000"))
}

// do runs steps with a time limit (the browser outlives it).
func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.failure(t)
		require.NoError(t, err)
	}
}

// failure keeps a screenshot and the page's text and console errors.
func (b *browser) failure(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(b.dir, "failure.png"), buf, 0o644)
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	t.Logf("page text at the failure:\n%s\nconsole errors: %q", text, b.takeErrors())
}

// run runs one action that returns a value, with a time limit.
func run[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// poll waits until a JavaScript expression is truthy.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(60*time.Second),
		chromedp.WithPollingInterval(250*time.Millisecond))
}

// waitData waits until a chart holder has a canvas and reports data points.
func waitData(sel string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		return !!el && Number(el.dataset.points || 0) > 0 && !!el.querySelector('canvas'); })()`, sel))
}

const loaded = `document.getElementById('main').dataset.loaded === 'true'`

// TestDashboardsInChromium checks the weekly report's KPIs against
// GET /v1/kpis, then, in Chromium: logs in, checks that the overview's charts
// render with data, opens an alert, acknowledges it and finds the change
// through the API, visits the other pages, and renders the weekly report; no
// page may log a console error.
func TestDashboardsInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	s := startFleet(t)
	// The report's KPIs equal GET /v1/kpis for the same week (checked
	// before the browser part, which skips without Chromium).
	week := report.WeekOf(time.Now()).String()
	compareReportWithKPIs(t, s, week)
	ensureAlert(t, s)
	b := newBrowser(t)

	// Log in. The login page shows no navigation and no "Log out".
	b.do(t, chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	assert.Equal(t, "none", run(t, b, chromedp.Evaluate[string](`getComputedStyle(document.getElementById('top')).display`)),
		"the login page hides the navigation bar")
	assert.False(t, run(t, b, chromedp.Evaluate[bool](`!!document.getElementById('logout').offsetParent`)), "no Log out before logging in")
	b.screenshot(t, "01-login.png")
	b.do(t, chromedp.SendKeys(chromedp.ID("token"), e2eToken), chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("tile-events-rate")))
	assert.Equal(t, e2eToken, run(t, b, chromedp.Evaluate[string](`sessionStorage.getItem('keyfleet.token')`)),
		"the token is kept in sessionStorage")
	assert.NotContains(t, run(t, b, chromedp.Evaluate[string](`location.href`)), e2eToken, "the token never appears in the URL")

	// Overview: every time-series chart is a uPlot canvas with data.
	b.do(t, poll(loaded), waitData("#chart-rate"), waitData("#chart-outcome"), waitData("#chart-split"),
		poll(`document.querySelectorAll('#lag-table tbody tr').length > 0`))
	assert.Positive(t, run(t, b, chromedp.Evaluate[int](`Number(document.querySelector('#chart-outcome').dataset.points)`)),
		"granted vs denied has data")
	assert.Positive(t, run(t, b, chromedp.Evaluate[int](`document.querySelectorAll('#alerts-table tbody tr').length`)),
		"open alerts by detector has rows")
	// The table's total column fits its card (it was clipped).
	assert.True(t, run(t, b, chromedp.Evaluate[bool](`(() => {
		const t = document.getElementById('alerts-table'), card = t.closest('section');
		return t.getBoundingClientRect().right <= card.getBoundingClientRect().right + 0.5 &&
			[...t.querySelectorAll('td.total')].every(td => td.scrollWidth <= td.clientWidth + 1); })()`)),
		"the open-alerts table's total column is not clipped")
	// Events per second: whole minutes only, so the last point is no false drop.
	assert.True(t, run(t, b, chromedp.Evaluate[bool](`Number(document.getElementById('chart-rate').dataset.lastX) + 60000 <= Date.now()`)),
		"the events/s chart ends at the last whole minute")
	// KPIs by slice: the picker's default (OS version) has rows, and
	// lock firmware (the picker's URL) re-renders it with firmware keys.
	b.do(t, poll(`document.querySelectorAll('#kpi-slices-table tbody tr').length > 0`))
	b.screenshot(t, "02-overview.png")
	b.do(t, chromedp.Navigate(s.base+"/#/overview?kslice=lock_firmware"),
		poll(`(() => { const t = document.querySelector('#kpi-slices-table thead th'); return !!t && t.textContent === 'lock firmware' &&
			document.querySelectorAll('#kpi-slices-table tbody tr').length > 0; })()`))

	// Alert triage: the list, then the newest open alert.
	b.do(t, chromedp.Navigate(s.base+"/#/alerts?status=open"), chromedp.WaitVisible(chromedp.CSS("#alerts tbody tr")))
	b.screenshot(t, "03-alerts.png")
	attr := run(t, b, chromedp.AttributeValue(chromedp.CSS("#alerts tbody tr"), "data-alert"))
	alertID := attr.Value
	require.NotEmpty(t, alertID)
	b.do(t, chromedp.Click(chromedp.CSS("#alerts tbody tr a.alert-link")), chromedp.WaitVisible(chromedp.ID("explanation")))
	assert.NotEmpty(t, run(t, b, chromedp.Text(chromedp.ID("explanation"))))
	b.do(t, poll(`(() => { const e = document.getElementById('evidence'); return !!e && !e.textContent.includes('Loading'); })()`))
	// The evidence timeline's time axis never repeats a label.
	ticks := run(t, b, chromedp.Evaluate[string](`document.getElementById('evidence-chart').dataset.xticks || '[]'`))
	var labels []string
	require.NoError(t, json.Unmarshal([]byte(ticks), &labels))
	seen := map[string]bool{}
	for _, l := range labels {
		if l == "" {
			continue
		}
		assert.False(t, seen[l], "evidence timeline tick %q repeats (%q)", l, labels)
		seen[l] = true
	}
	b.screenshot(t, "04-alert-detail.png")

	// Acknowledge it; the API shows the change.
	b.do(t, chromedp.SendKeys(chromedp.ID("note"), "checked by the e2e test"),
		chromedp.Click(chromedp.CSS(`button[data-status="acknowledged"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-status="open"]`)))
	var got struct {
		Status     string `json:"status"`
		StatusNote string `json:"status_note"`
	}
	require.Equal(t, 200, s.get("/v1/alerts/"+url.PathEscape(alertID), &got))
	assert.Equal(t, "acknowledged", got.Status)
	assert.Equal(t, "checked by the e2e test", got.StatusNote)
	b.screenshot(t, "05-alert-acknowledged.png")

	// Suspend the credential of an alert from its page (confirming the
	// dialog); the control plane shows the credential suspended.
	alertID, credential := alertWithActiveCredential(t, s)
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	b.do(t, chromedp.Navigate(s.base+"/#/alerts/"+url.PathEscape(alertID)), chromedp.WaitVisible(chromedp.ID("suspend")),
		chromedp.SendKeys(chromedp.ID("note"), "suspended by the e2e test"),
		chromedp.Click(chromedp.ID("suspend")),
		poll(`document.getElementById('toast').textContent.includes('Credential suspended')`))
	var cv struct {
		Summary struct {
			State string `json:"state"`
		} `json:"summary"`
		History []struct {
			State  string `json:"state"`
			Reason string `json:"reason"`
		} `json:"history"`
	}
	require.Eventually(t, func() bool {
		return s.get("/v1/credentials/"+url.PathEscape(credential), &cv) == 200 && cv.Summary.State == "suspended"
	}, 30*time.Second, 250*time.Millisecond, "credential %s not suspended", credential)
	last := cv.History[len(cv.History)-1]
	assert.Equal(t, "suspended", last.State)
	assert.Contains(t, last.Reason, alertID)
	assert.Contains(t, last.Reason, "suspended by the e2e test")
	b.screenshot(t, "05b-credential-suspended.png")

	// Investigation of a subject and one of its credentials.
	var events struct {
		Events []struct {
			SubjectID    string `json:"subject_id"`
			CredentialID string `json:"credential_id"`
		} `json:"events"`
	}
	// Unlocks only: the newest granted events at night are auto-relocks,
	// which have no subject.
	require.Equal(t, 200, s.get("/v1/events?outcome=granted&action=unlock&limit=1000&from=now-2d", &events))
	subject, credential := "", ""
	for _, e := range events.Events {
		if e.SubjectID != "" && e.CredentialID != "" {
			subject, credential = e.SubjectID, e.CredentialID
			break
		}
	}
	require.NotEmpty(t, subject, "a granted event with a subject")
	b.do(t, chromedp.Navigate(s.base+"/#/investigate?"+url.Values{"q": {subject}, "kind": {"subject"}, "range": {"7d"}}.Encode()),
		waitData("#subject-timeline"))
	// An admin reveals who the subject is (audited).
	b.do(t, chromedp.Click(chromedp.ID("reveal-identity")), chromedp.WaitVisible(chromedp.CSS("#identity dd.mono")))
	assert.Regexp(t, `^dir:\d{6}$`, run(t, b, chromedp.Text(chromedp.CSS("#identity dd.mono"))))
	b.screenshot(t, "06-investigate-subject.png")
	b.do(t, chromedp.Navigate(s.base+"/#/investigate?"+url.Values{"q": {credential}, "kind": {"credential"}, "range": {"7d"}}.Encode()),
		poll(`(() => { const c = document.getElementById('who-issued'); return !!c && !c.textContent.includes('Loading'); })()`),
		waitData("#credential-timeline"))
	b.screenshot(t, "07-investigate-credential.png")

	// Credentials.
	b.do(t, chromedp.Navigate(s.base+"/#/credentials"), poll(loaded))
	assert.Equal(t, 8, run(t, b, chromedp.Evaluate[int](`document.querySelectorAll('#lifecycle tr').length`)))
	b.screenshot(t, "08-credentials.png")

	// Estate: the simulated estate's weak links (the planted ones), as the
	// upgrade plan.
	var links struct {
		Total int `json:"total"`
	}
	require.Equal(t, 200, s.get("/v1/estate/weak-links", &links))
	require.Positive(t, links.Total, "the simulated estate has planted weak links")
	b.do(t, chromedp.Navigate(s.base+"/#/estate?order=plan"), poll(loaded),
		poll(`document.querySelectorAll('#weak-links tbody tr').length > 0`))
	assert.Equal(t, links.Total, run(t, b, chromedp.Evaluate[int](`document.querySelectorAll('#weak-links tbody tr').length`)))
	b.screenshot(t, "08b-estate.png")

	// Exceptions: one recorded through the API is listed, with its KPIs.
	start := time.Now().UnixMilli()
	exc := fmt.Sprintf(`{"kind":"door","scope":{"site_id":"site-01","door_id":"loading-bay"},"reason":"manual_override",`+
		`"approvers":["facilities-lead"],"compensating_control":"CCTV watched by the front desk","start_ms":%d,"expiry_ms":%d}`,
		start, start+3*24*3600_000)
	require.Equal(t, 201, s.call("POST", "/v1/exceptions", exc, nil))
	b.do(t, chromedp.Navigate(s.base+"/#/exceptions"), poll(loaded),
		poll(`document.querySelectorAll('#exceptions tbody tr').length > 0`))
	assert.Equal(t, 1, run(t, b, chromedp.Evaluate[int](`document.querySelectorAll('#exceptions tbody tr').length`)))
	assert.Contains(t, run(t, b, chromedp.Evaluate[string](`document.querySelector('#exceptions tbody tr').textContent`)), "expiring")
	b.screenshot(t, "08c-exceptions.png")

	// Reports page with the current week's report in its frame.
	b.do(t, chromedp.Navigate(s.base+"/#/reports?week="+week), chromedp.WaitVisible(chromedp.ID("report-form")),
		chromedp.Click(chromedp.ID("report-submit")), chromedp.WaitVisible(chromedp.CSS("iframe.report")),
		poll(`!!document.querySelector('iframe.report[data-loaded]')`))
	time.Sleep(500 * time.Millisecond) // the sandboxed frame paints in its own process
	b.screenshot(t, "09-reports.png")
	assert.Empty(t, b.takeErrors(), "console errors in the dashboards")

	// An analyst sees only what the role may use: no Reports page, no
	// "Suspend credential" or "Reveal identity", and no page asks for
	// something the role would be refused (a 403 logs a console error).
	var analyst struct {
		Secret string `json:"secret"`
	}
	require.Equal(t, 201, s.call("POST", "/v1/tokens", `{"name":"e2e-analyst","role":"analyst"}`, &analyst))
	require.Eventually(t, func() bool { // tokens reach the authentication cache within seconds
		req, err := http.NewRequest("GET", s.base+"/v1/dashboards/session", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+analyst.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 250*time.Millisecond, "the analyst token is not accepted")
	b.do(t, chromedp.Navigate(s.base+"/#/overview"), chromedp.WaitVisible(chromedp.ID("logout")),
		chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), analyst.Secret), chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("tile-events-rate")), poll(loaded))
	assert.False(t, run(t, b, chromedp.Evaluate[bool](`!!document.querySelector('[data-nav="reports"]').offsetParent`)),
		"no Reports page for an analyst")
	b.screenshot(t, "11-analyst-overview.png")
	b.do(t, chromedp.Navigate(s.base+"/#/alerts/"+url.PathEscape(alertID)), chromedp.WaitVisible(chromedp.ID("explanation")))
	assert.False(t, run(t, b, chromedp.Evaluate[bool](`!!document.getElementById('suspend')`)), "no Suspend credential for an analyst")
	assert.True(t, run(t, b, chromedp.Evaluate[bool](`!!document.querySelector('button[data-status]')`)), "an analyst triages alerts")
	b.do(t, chromedp.Navigate(s.base+"/#/investigate?"+url.Values{"q": {subject}, "kind": {"subject"}, "range": {"7d"}}.Encode()),
		waitData("#subject-timeline"))
	assert.False(t, run(t, b, chromedp.Evaluate[bool](`!!document.getElementById('reveal-identity')`)), "no Reveal identity for an analyst")
	b.do(t, chromedp.Navigate(s.base+"/#/credentials"), poll(loaded))
	b.screenshot(t, "12-analyst-credentials.png")
	assert.Empty(t, b.takeErrors(), "an analyst's pages log errors (403s)")

	// The HTML report on its own renders without console errors.
	htmlPath, err := filepath.Abs(filepath.Join(b.dir, "weekly-report.html"))
	require.NoError(t, err)
	req, err := http.NewRequest("GET", s.base+"/v1/reports/weekly?format=html&week="+week, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.NoError(t, os.WriteFile(htmlPath, body, 0o644))
	b.do(t, chromedp.Navigate("file://"+htmlPath), chromedp.WaitVisible(chromedp.CSS("h1")))
	assert.GreaterOrEqual(t, run(t, b, chromedp.Evaluate[int](`document.querySelectorAll('svg.chart').length`)), 6,
		"the report's inline SVG charts")
	assert.Contains(t, run(t, b, chromedp.Text(chromedp.CSS("h1"))), week)
	b.screenshot(t, "10-weekly-report.png")
	assert.Empty(t, b.takeErrors(), "console errors in the HTML report")
}

// compareReportWithKPIs checks the report's numbers against GET /v1/kpis
// over the same week: the credential KPIs, and the access and pipeline
// numbers when the query API serves the route. Events may still be arriving
// from the simulator, so it compares until both answers agree (at most 30 s)
// and reports the last difference.
func compareReportWithKPIs(t *testing.T, s *server, week string) {
	t.Helper()
	w, err := report.ParseWeek(week)
	require.NoError(t, err)
	from, to := strconv.FormatInt(w.Start().UnixMilli(), 10), strconv.FormatInt(w.End().UnixMilli(), 10)
	var diffs []string
	for attempt := 0; attempt < 30; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		var r report.Report
		require.Equal(t, 200, s.get("/v1/reports/weekly?format=json&week="+week, &r))
		var k map[string]json.RawMessage
		require.Equal(t, 200, s.get("/v1/kpis?from="+from+"&to="+to, &k))
		diffs = kpiDiffs(t, &r, k)
		if len(diffs) == 0 {
			t.Logf("report %s equals GET /v1/kpis (%d events, %d credentials issued, %d live)", week,
				r.Current().Events, r.Current().Activation.Issued, r.Current().Exceptions.Live)
			return
		}
	}
	t.Errorf("report vs GET /v1/kpis for %s:\n%s", week, strings.Join(diffs, "\n"))
}

func kpiDiffs(t *testing.T, r *report.Report, k map[string]json.RawMessage) []string {
	t.Helper()
	var diffs []string
	cred := k
	if raw, ok := k["credentials"]; ok {
		require.NoError(t, json.Unmarshal(raw, &cred))
	}
	cur := r.Current()
	for _, f := range []struct {
		name string
		want any
	}{{"revocation_latency", cur.RevocationLatency}, {"leaver_latency", cur.LeaverLatency}, {"time_to_issue", cur.TimeToIssue},
		{"activation", cur.Activation}, {"exceptions", cur.Exceptions}} {
		want, err := json.Marshal(f.want)
		require.NoError(t, err)
		var a, b any
		require.NoError(t, json.Unmarshal(want, &a))
		if err := json.Unmarshal(cred[f.name], &b); err != nil || !reflect.DeepEqual(a, b) {
			diffs = append(diffs, fmt.Sprintf("%s: report %s, API %s", f.name, want, cred[f.name]))
		}
	}
	if raw, ok := k["pipeline"]; ok {
		var p struct {
			DeadLetters uint64  `json:"dead_letters"`
			Rate        float64 `json:"dead_letter_rate"`
		}
		require.NoError(t, json.Unmarshal(raw, &p))
		if p.DeadLetters != cur.DeadLetters || math.Abs(p.Rate-cur.DLQRate) > 1e-12 {
			diffs = append(diffs, fmt.Sprintf("dead letters: report %d (rate %g), API %d (rate %g)",
				cur.DeadLetters, cur.DLQRate, p.DeadLetters, p.Rate))
		}
	}
	if raw, ok := k["access"]; ok {
		var a struct {
			Events uint64 `json:"events"`
		}
		require.NoError(t, json.Unmarshal(raw, &a))
		if a.Events != cur.Events {
			diffs = append(diffs, fmt.Sprintf("events: report %d, API %d", cur.Events, a.Events))
		}
	}
	return diffs
}
