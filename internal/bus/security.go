package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/keyfleet/keyfleet/internal/flagenv"
)

// Security is how keyfleet connects to a secured Kafka cluster: TLS and a
// SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), for every client it
// makes (Config.Dialer for readers, Config.Transport for writers and
// clients). A nil *Security is plaintext without authentication.
type Security struct {
	TLS  *tls.Config    // nil: no TLS
	SASL sasl.Mechanism // nil: no SASL

	once      sync.Once
	transport *kafka.Transport
}

// SecurityFlags are the Kafka security flags of a subcommand.
type SecurityFlags struct {
	TLS        bool
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
	Mechanism  string
	Username   string
	Password   string
}

// SASL mechanism names of SecurityFlags.Mechanism.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// RegisterFlags defines the Kafka TLS and SASL flags on s.
func (f *SecurityFlags) RegisterFlags(s *flagenv.Set) {
	s.Bool(&f.TLS, "kafka-tls", "KEYFLEET_KAFKA_TLS", false, "connect to Kafka over TLS (implied by --kafka-tls-ca)")
	s.String(&f.CAFile, "kafka-tls-ca", "KEYFLEET_KAFKA_TLS_CA", "",
		"PEM file of the CA(s) that sign the brokers' certificates (default: the system's roots)")
	s.String(&f.CertFile, "kafka-tls-cert", "KEYFLEET_KAFKA_TLS_CERT", "", "client certificate (PEM) for mutual TLS")
	s.String(&f.KeyFile, "kafka-tls-key", "KEYFLEET_KAFKA_TLS_KEY", "", "client key (PEM) for mutual TLS")
	s.String(&f.ServerName, "kafka-tls-server-name", "KEYFLEET_KAFKA_TLS_SERVER_NAME", "",
		"name to verify the brokers' certificates against (default: each broker's host)")
	s.String(&f.Mechanism, "kafka-sasl-mechanism", "KEYFLEET_KAFKA_SASL_MECHANISM", "",
		"SASL authentication: plain, scram-sha-256 or scram-sha-512 (empty: none); use with TLS")
	s.String(&f.Username, "kafka-sasl-user", "KEYFLEET_KAFKA_SASL_USER", "", "SASL user name")
	s.Secret(&f.Password, "kafka-sasl-password", "KEYFLEET_KAFKA_SASL_PASSWORD", "SASL password")
}

// Validate checks the flags without reading files.
func (f SecurityFlags) Validate() error {
	var errs []error
	if (f.CertFile == "") != (f.KeyFile == "") {
		errs = append(errs, errors.New("--kafka-tls-cert and --kafka-tls-key go together"))
	}
	switch strings.ToLower(f.Mechanism) {
	case "":
		if f.Username != "" || f.Password != "" {
			errs = append(errs, errors.New("--kafka-sasl-user/--kafka-sasl-password need --kafka-sasl-mechanism"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if f.Username == "" || f.Password == "" {
			errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %s needs --kafka-sasl-user and --kafka-sasl-password", f.Mechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %q: want plain, scram-sha-256 or scram-sha-512", f.Mechanism))
	}
	return errors.Join(errs...)
}

// Enabled reports whether any security is configured.
func (f SecurityFlags) Enabled() bool {
	return f.TLS || f.CAFile != "" || f.CertFile != "" || f.Mechanism != ""
}

// Build reads the certificate files and returns the security settings (nil
// when none are configured).
func (f SecurityFlags) Build() (*Security, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if !f.Enabled() {
		return nil, nil
	}
	s := &Security{}
	if f.TLS || f.CAFile != "" || f.CertFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
		if f.CAFile != "" {
			pem, err := os.ReadFile(f.CAFile)
			if err != nil {
				return nil, fmt.Errorf("--kafka-tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--kafka-tls-ca %s: no PEM certificate in it", f.CAFile)
			}
			cfg.RootCAs = pool
		}
		if f.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("--kafka-tls-cert/--kafka-tls-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		s.TLS = cfg
	}
	var err error
	switch strings.ToLower(f.Mechanism) {
	case SASLPlain:
		s.SASL = plain.Mechanism{Username: f.Username, Password: f.Password}
	case SASLScramSHA256:
		s.SASL, err = scram.Mechanism(scram.SHA256, f.Username, f.Password)
	case SASLScramSHA512:
		s.SASL, err = scram.Mechanism(scram.SHA512, f.Username, f.Password)
	}
	if err != nil {
		return nil, fmt.Errorf("--kafka-sasl-mechanism: %w", err)
	}
	return s, nil
}

// dialTimeout bounds one connection attempt, TLS and SASL included.
const dialTimeout = 10 * time.Second

// Dialer returns the dialer for kafka-go readers (ReaderConfig.Dialer) and
// Conns: nil (kafka-go's default) without security.
func (c Config) Dialer() *kafka.Dialer {
	if c.Security == nil {
		return nil
	}
	return &kafka.Dialer{Timeout: dialTimeout, DualStack: true, TLS: c.Security.TLS, SASLMechanism: c.Security.SASL}
}

// Transport returns the transport of kafka-go writers and clients
// (Writer.Transport, Client.Transport): nil (kafka-go's default) without
// security; with it one shared transport, so its connection pool is too.
func (c Config) Transport() kafka.RoundTripper {
	if c.Security == nil {
		return nil
	}
	s := c.Security
	s.once.Do(func() {
		s.transport = &kafka.Transport{DialTimeout: dialTimeout, IdleTimeout: 30 * time.Second, TLS: s.TLS, SASL: s.SASL}
	})
	return s.transport
}

// Client returns a kafka-go client of the brokers with the given timeout
// per request.
func (c Config) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: timeout, Transport: c.Transport()}
}
