package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// server is `keyfleet serve` running as a separate process.
type server struct {
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:port
	token   string // admin (bootstrap) token
	logPath string
	client  *http.Client
	exited  chan struct{}
	waitErr error
}

type serveConfig struct {
	binary     string
	brokers    []string
	prefix     string
	partitions int
	chAddr     string
	chDatabase string
	chUser     string
	chPassword string
	registry   string
	dataDir    string
	logPath    string
	token      string
	key        string
	extra      []string
	httpAddr   string        // empty: a free loopback port
	readyWait  time.Duration // how long start-up may take (0: 3 minutes)
}

// startServe starts keyfleet serve on a free loopback port and waits until
// /readyz answers 200. The process gets SIGKILL if the harness dies
// (Pdeathsig), so it never outlives a run.
func startServe(ctx context.Context, c serveConfig) (*server, error) {
	addr := c.httpAddr
	if addr == "" {
		var err error
		if addr, err = freeLoopback(); err != nil {
			return nil, err
		}
	}
	args := []string{"serve",
		"--kafka-brokers", strings.Join(c.brokers, ","), "--topic-prefix", c.prefix,
		"--topic-partitions", fmt.Sprint(c.partitions),
		"--clickhouse-addr", c.chAddr, "--clickhouse-database", c.chDatabase, "--clickhouse-user", c.chUser,
		"--http-addr", addr, "--data-dir", c.dataDir, "--registry", c.registry,
		"--access-log=false", "--log-level", "warn",
		// The query phase measures latency under load from one token.
		"--rate-limit-expensive", "off"}
	args = append(args, c.extra...)
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, fmt.Errorf("serve log: %w", err)
	}
	cmd := exec.Command(c.binary, args...)
	cmd.Env = append(os.Environ(), "KEYFLEET_PSEUDONYM_KEY="+c.key, "KEYFLEET_BOOTSTRAP_TOKEN="+c.token, "KEYFLEET_AUDIT_KEY=keyfleet-bench-audit-key-v1-0123456789",
		"KEYFLEET_CLICKHOUSE_PASSWORD="+c.chPassword)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start keyfleet serve: %w", err)
	}
	s := &server{cmd: cmd, base: "http://" + addr, token: c.token, logPath: c.logPath,
		client: &http.Client{Timeout: 60 * time.Second}, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	wait := c.readyWait
	if wait <= 0 {
		wait = 3 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("keyfleet serve exited during start-up (%v); log %s:\n%s", s.waitErr, c.logPath, tail(c.logPath, 20))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if code, _, err := s.do(ctx, http.MethodGet, "/readyz", nil); err == nil && code == http.StatusOK {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("keyfleet serve not ready after 3m; log %s:\n%s", c.logPath, tail(c.logPath, 20))
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop asks serve to shut down (SIGTERM: drain, flush, commit) and kills it
// after 30 s.
func (s *server) stop() {
	if !s.alive() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// do sends one API request with the admin token; body (if not nil) is sent
// as JSON. It returns the status and the response body.
func (s *server) do(ctx context.Context, method, path string, body any, headers ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// call is do for JSON APIs: a status of 300 or more is an error, and a 503
// (the control plane rebuilding its state) is retried for up to a minute.
func (s *server) call(ctx context.Context, method, path string, body, out any, headers ...string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		code, data, err := s.do(ctx, method, path, body, headers...)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if code == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if code >= 300 {
			return fmt.Errorf("%s %s: %d: %s", method, path, code, strings.TrimSpace(string(data)))
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
		return nil
	}
}

// scrape reads /metrics.
func (s *server) scrape(ctx context.Context) (metrics, error) {
	code, data, err := s.do(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: status %d", code)
	}
	return parseMetrics(data), nil
}

// profile saves a profile of serve (admin-only /debug/pprof/): name
// "profile" (CPU, for seconds) or "heap".
func (s *server) profile(ctx context.Context, name string, seconds int, path string) error {
	code, data, err := s.do(ctx, http.MethodGet, fmt.Sprintf("/debug/pprof/%s?seconds=%d", name, seconds), nil)
	if name == "heap" {
		code, data, err = s.do(ctx, http.MethodGet, "/debug/pprof/heap", nil)
	}
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s profile: status %d: %s", name, code, data)
	}
	return os.WriteFile(path, data, 0o644)
}

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + " …"
		}
	}
	return strings.Join(lines, "\n")
}

var errServeDied = errors.New("keyfleet serve exited")
