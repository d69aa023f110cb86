package service

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// SecurityConfig is how serve protects itself: HTTPS, rate limits, Kafka
// TLS/SASL, the audit key and checkpoints, and the input bounds.
type SecurityConfig struct {
	HTTPTLSCert        string
	HTTPTLSKey         string
	HTTPProxyHeader    string
	HTTPTrustedProxies []string
	AuthFailureRate    string
	ExpensiveRate      string

	Kafka bus.SecurityFlags

	AuditKey            string
	AuditKeyFile        string
	AuditCheckpointFile string

	EventTimeMin        string
	EventTimeAhead      time.Duration
	IngestMaxPartitions int
}

func (c *SecurityConfig) registerFlags(s *flagenv.Set) {
	s.String(&c.HTTPTLSCert, "http-tls-cert", "KEYFLEET_HTTP_TLS_CERT", "",
		"serve HTTPS with this certificate chain (PEM); with --http-tls-key")
	s.String(&c.HTTPTLSKey, "http-tls-key", "KEYFLEET_HTTP_TLS_KEY", "", "private key (PEM) of --http-tls-cert")
	s.String(&c.HTTPProxyHeader, "http-proxy-header", "KEYFLEET_HTTP_PROXY_HEADER", "",
		"header carrying the client address set by a reverse proxy (e.g. X-Real-IP), believed only from --http-trusted-proxies")
	s.List(&c.HTTPTrustedProxies, "http-trusted-proxies", "KEYFLEET_HTTP_TRUSTED_PROXIES", nil,
		"comma-separated addresses or CIDRs of reverse proxies whose --http-proxy-header is believed")
	s.String(&c.AuthFailureRate, "rate-limit-auth-failures", "KEYFLEET_RATE_LIMIT_AUTH_FAILURES", "100/1m",
		"failed authentications allowed per client address (N/DURATION or off); past it, 429 with Retry-After")
	s.String(&c.ExpensiveRate, "rate-limit-expensive", "KEYFLEET_RATE_LIMIT_EXPENSIVE", "120/1m",
		"calls per token of the expensive routes: search, summaries, timelines, exports, KPIs, reports, audit verify (N/DURATION or off)")
	c.Kafka.RegisterFlags(s)
	s.Secret(&c.AuditKey, "audit-key", "KEYFLEET_AUDIT_KEY",
		"secret (≥32 characters) keying the audit log's entries and checkpoints; or --audit-key-file")
	s.String(&c.AuditKeyFile, "audit-key-file", "KEYFLEET_AUDIT_KEY_FILE", "",
		"audit key file: lines \"KEY_ID SECRET\", the last one signs (rotation: append a line); default with the embedded broker: <data-dir>/audit.keys, created")
	s.String(&c.AuditCheckpointFile, "audit-checkpoint-file", "KEYFLEET_AUDIT_CHECKPOINT_FILE", "",
		"also append the audit chain's signed checkpoints to this file (beside the audit.checkpoints topic)")
	s.String(&c.EventTimeMin, "event-time-min", "KEYFLEET_EVENT_TIME_MIN", "2000-01-01",
		"earliest event time accepted (YYYY-MM-DD, UTC); earlier events are refused (time_out_of_range)")
	s.Duration(&c.EventTimeAhead, "event-time-max-ahead", "KEYFLEET_EVENT_TIME_MAX_AHEAD", 7*24*time.Hour,
		"how far past its receipt an event time may be; later ones are refused (time_out_of_range)")
	s.Int(&c.IngestMaxPartitions, "ingest-max-partitions", "KEYFLEET_INGEST_MAX_PARTITIONS", 12,
		"monthly partitions one HTTP ingest request may reach; records of further months are rejected (too_many_partitions)")
}

func (c *SecurityConfig) validate(realKafka bool) error {
	var errs []error
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		errs = append(errs, errors.New("--http-tls-cert and --http-tls-key go together"))
	}
	if c.HTTPProxyHeader != "" && len(c.HTTPTrustedProxies) == 0 {
		errs = append(errs, errors.New("--http-proxy-header needs --http-trusted-proxies"))
	}
	if _, err := httpapi.ParseRate(c.AuthFailureRate); err != nil {
		errs = append(errs, fmt.Errorf("--rate-limit-auth-failures: %w", err))
	}
	if _, err := httpapi.ParseRate(c.ExpensiveRate); err != nil {
		errs = append(errs, fmt.Errorf("--rate-limit-expensive: %w", err))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Kafka.Enabled() && !realKafka {
		errs = append(errs, errors.New("--kafka-tls*/--kafka-sasl-*: only with --kafka-brokers (the embedded broker is plaintext on loopback)"))
	}
	switch {
	case c.AuditKey != "" && c.AuditKeyFile != "":
		errs = append(errs, errors.New("--audit-key and --audit-key-file: give one"))
	case c.AuditKey != "" && len(c.AuditKey) < audit.MinKeyLen:
		errs = append(errs, fmt.Errorf("--audit-key (KEYFLEET_AUDIT_KEY): at least %d characters are required", audit.MinKeyLen))
	case c.AuditKey == "" && c.AuditKeyFile == "" && realKafka:
		errs = append(errs, errors.New("--audit-key or --audit-key-file is required when running against real Kafka"))
	}
	if _, err := c.timeWindow(); err != nil {
		errs = append(errs, err)
	}
	if c.IngestMaxPartitions < 1 || c.IngestMaxPartitions > 100 {
		errs = append(errs, fmt.Errorf("--ingest-max-partitions: %d is not in 1..100", c.IngestMaxPartitions))
	}
	return errors.Join(errs...)
}

func (c *SecurityConfig) timeWindow() (event.TimeWindow, error) {
	min, err := time.Parse(time.DateOnly, c.EventTimeMin)
	if err != nil {
		return event.TimeWindow{}, fmt.Errorf("--event-time-min %q: want YYYY-MM-DD", c.EventTimeMin)
	}
	w := event.TimeWindow{Min: min, Ahead: c.EventTimeAhead}
	if err := w.Validate(); err != nil {
		return event.TimeWindow{}, fmt.Errorf("--event-time-min/--event-time-max-ahead: %w", err)
	}
	return w, nil
}

// auditKeys returns the audit keyring: --audit-key, --audit-key-file, or
// (embedded broker only; Validate refuses it otherwise) a key file in the
// data directory, created with a random key the first time.
func (c *SecurityConfig) auditKeys(dataDir string, logger *slog.Logger) (*audit.Keyring, error) {
	switch {
	case c.AuditKey != "":
		return audit.KeyringFromSecret(c.AuditKey)
	case c.AuditKeyFile != "":
		return audit.LoadKeyFile(c.AuditKeyFile)
	}
	path := filepath.Join(dataDir, "audit.keys")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("audit key: %w", err)
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("audit key: %w", err)
		}
		line := "k" + time.Now().UTC().Format("20060102") + " " + hex.EncodeToString(b) + "\n"
		if err := os.WriteFile(path, []byte("# keyfleet audit keys: KEY_ID SECRET; the last line signs\n"+line), 0o600); err != nil {
			return nil, fmt.Errorf("audit key: %w", err)
		}
		logger.Warn("no --audit-key: created a development audit key file (fine for the embedded demo, keep it with the data)", "path", path)
	}
	return audit.LoadKeyFile(path)
}

// expensiveRoutes are the routes rate-limited per caller (those serve has).
var expensiveRoutes = []string{
	"GET /v1/events", "GET /v1/events/summary", "GET /v1/subjects/:id/timeline",
	"GET /v1/export/events", "GET /v1/export/events/reidentified", "GET /v1/kpis",
	"GET /v1/reports/weekly", "GET /v1/audit/verify", "GET /v1/audit", "GET /v1/export/audit",
}

// httpSecurity returns the server options of the security configuration
// for the given route table.
func (c *SecurityConfig) httpSecurity(routes []httpapi.Route, o *httpapi.Options) error {
	if c.HTTPTLSCert != "" {
		tlsCfg, err := httpapi.LoadTLS(c.HTTPTLSCert, c.HTTPTLSKey)
		if err != nil {
			return fmt.Errorf("--http-tls-cert/--http-tls-key: %w", err)
		}
		o.TLS = tlsCfg
	}
	o.AuthFailures, _ = httpapi.ParseRate(c.AuthFailureRate)
	o.Expensive, _ = httpapi.ParseRate(c.ExpensiveRate)
	have := map[string]bool{}
	for _, r := range routes {
		have[r.Method+" "+r.Path] = true
	}
	for _, k := range expensiveRoutes {
		if have[k] {
			o.ExpensiveRoutes = append(o.ExpensiveRoutes, k)
		}
	}
	o.ProxyHeader, o.TrustedProxies = c.HTTPProxyHeader, c.HTTPTrustedProxies
	return nil
}

// bootstrapLen is checked by Config.Validate.
func bootstrapLen(secret string) error {
	if secret != "" && len(secret) < auth.MinSecretLen {
		return fmt.Errorf("--bootstrap-token (KEYFLEET_BOOTSTRAP_TOKEN): at least %d characters are required", auth.MinSecretLen)
	}
	return nil
}
