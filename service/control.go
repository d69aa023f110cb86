package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/api"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/session"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/detect/respond"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// ControlConfig configures the credential control plane of `keyfleet serve`.
type ControlConfig struct {
	MaxQueue   int
	MaxBulk    int
	PendingSLA time.Duration
	AuditChain string

	// The device-session layer's webhook (control/session).
	SessionURL      string
	SessionSecret   string
	SessionAttempts int
	SessionTimeout  time.Duration

	// Lock command reconciliation.
	ResendAfter time.Duration
	ResendMax   time.Duration
	GiveUp      time.Duration

	Attest AttestConfig
}

// AttestConfig configures attestation verification (control/attest).
type AttestConfig struct {
	Formats []string

	AndroidRoots        []string
	AndroidPackages     []string
	AndroidDigests      []string
	AndroidMinLevel     string
	AndroidVerifiedBoot bool

	AppleRoots []string
	AppleApps  []string
	AppleDev   bool

	WebAuthnRoots   []string
	WebAuthnRPIDs   []string
	WebAuthnOrigins []string
	WebAuthnSelf    bool

	ChallengeKey string
	ChallengeTTL time.Duration
}

func (c *ControlConfig) registerFlags(s *flagenv.Set) {
	s.Int(&c.MaxQueue, "control-max-queue", "KEYFLEET_CONTROL_MAX_QUEUE", 50000,
		"control commands that may wait in control.commands before provisioning requests get 429")
	s.Int(&c.MaxBulk, "control-max-bulk", "KEYFLEET_CONTROL_MAX_BULK", 10000, "most credentials in one bulk request")
	s.Duration(&c.PendingSLA, "revocation-sla", "KEYFLEET_REVOCATION_SLA", control.DefaultPendingSLA,
		"how long a revocation may take to be confirmed by every lock before it is escalated (alert revocation_overdue)")
	s.String(&c.AuditChain, "audit-chain", "KEYFLEET_AUDIT_CHAIN", "",
		"name of this process's audit hash chain (default: host-pid-start; never share one between processes)")
	s.String(&c.SessionURL, "session-revoke-url", "KEYFLEET_SESSION_REVOKE_URL", "",
		"URL of the wallet/MDM session-revocation webhook (signed, see control/session); empty: the device-session layer reads not_configured")
	s.Secret(&c.SessionSecret, "session-revoke-secret", "KEYFLEET_SESSION_REVOKE_SECRET",
		"HMAC-SHA256 key of the session webhook's X-Keyfleet-Signature (at least 16 bytes)")
	s.Int(&c.SessionAttempts, "session-revoke-attempts", "KEYFLEET_SESSION_REVOKE_ATTEMPTS", 6,
		"calls per round of a session revocation (exponential backoff with jitter); rounds that fail transiently repeat on the\n"+
			"        lock re-send schedule until --lock-give-up, then the layer reads failed")
	s.Duration(&c.SessionTimeout, "session-revoke-timeout", "KEYFLEET_SESSION_REVOKE_TIMEOUT", 10*time.Second,
		"time limit of one session webhook call")
	s.Duration(&c.ResendAfter, "lock-resend-after", "KEYFLEET_LOCK_RESEND_AFTER", 30*time.Second,
		"re-send a lock command without an applied ack after this long (same command id; doubles per send, with jitter)")
	s.Duration(&c.ResendMax, "lock-resend-max", "KEYFLEET_LOCK_RESEND_MAX", 10*time.Minute,
		"longest wait between two sends of an unacknowledged lock command")
	s.Duration(&c.GiveUp, "lock-give-up", "KEYFLEET_LOCK_GIVE_UP", 24*time.Hour,
		"stop re-sending a lock command after this long without an applied ack (its lock then reads failed)")
	a := &c.Attest
	s.List(&a.Formats, "attest-formats", "KEYFLEET_ATTEST_FORMATS", nil,
		"accepted attestation formats (android_key_attestation, apple_app_attest, webauthn); empty: every format whose apps are configured")
	s.List(&a.AndroidRoots, "attest-android-roots", "KEYFLEET_ATTEST_ANDROID_ROOTS", nil,
		"PEM files of Android attestation roots (empty: Google's hardware attestation roots)")
	s.List(&a.AndroidPackages, "attest-android-packages", "KEYFLEET_ATTEST_ANDROID_PACKAGES", nil,
		"accepted Android package names (the attestationApplicationId); enables android_key_attestation")
	s.List(&a.AndroidDigests, "attest-android-signing-digests", "KEYFLEET_ATTEST_ANDROID_SIGNING_DIGESTS", nil,
		"accepted SHA-256 digests (hex) of the Android app's signing certificates (empty: any)")
	s.String(&a.AndroidMinLevel, "attest-android-min-security-level", "KEYFLEET_ATTEST_ANDROID_MIN_SECURITY_LEVEL",
		string(attest.SecurityLevelTrustedEnvironment), "weakest accepted Android keystore: software, trusted_environment or strongbox")
	s.Bool(&a.AndroidVerifiedBoot, "attest-android-require-verified-boot", "KEYFLEET_ATTEST_ANDROID_REQUIRE_VERIFIED_BOOT", true,
		"refuse Android keys of devices without a verified boot state and a locked bootloader")
	s.List(&a.AppleRoots, "attest-apple-roots", "KEYFLEET_ATTEST_APPLE_ROOTS", nil,
		"PEM files of App Attest roots (empty: Apple's App Attestation Root CA)")
	s.List(&a.AppleApps, "attest-apple-app-ids", "KEYFLEET_ATTEST_APPLE_APP_IDS", nil,
		"accepted App IDs (TEAMID.bundle.id); enables apple_app_attest")
	s.Bool(&a.AppleDev, "attest-apple-allow-development", "KEYFLEET_ATTEST_APPLE_ALLOW_DEVELOPMENT", false,
		"accept App Attest keys of the development environment")
	s.List(&a.WebAuthnRoots, "attest-webauthn-roots", "KEYFLEET_ATTEST_WEBAUTHN_ROOTS", nil,
		"PEM files of WebAuthn authenticator attestation roots (no default)")
	s.List(&a.WebAuthnRPIDs, "attest-webauthn-rp-ids", "KEYFLEET_ATTEST_WEBAUTHN_RP_IDS", nil,
		"accepted WebAuthn relying-party ids; enables webauthn (with roots or self attestation)")
	s.List(&a.WebAuthnOrigins, "attest-webauthn-origins", "KEYFLEET_ATTEST_WEBAUTHN_ORIGINS", nil,
		"accepted WebAuthn client origins (empty: any)")
	s.Bool(&a.WebAuthnSelf, "attest-webauthn-allow-self", "KEYFLEET_ATTEST_WEBAUTHN_ALLOW_SELF", false,
		"accept WebAuthn self attestation (proves key possession, not which device holds it)")
	s.Secret(&a.ChallengeKey, "attest-challenge-key", "KEYFLEET_ATTEST_CHALLENGE_KEY",
		"HMAC key of attestation challenges, shared by every instance (at least 32 bytes; default: derived from --pseudonym-key)")
	s.Duration(&a.ChallengeTTL, "attest-challenge-ttl", "KEYFLEET_ATTEST_CHALLENGE_TTL", attest.DefaultChallengeTTL,
		"how long an attestation challenge may be answered")
}

func (c *ControlConfig) validate() error {
	var errs []error
	if c.SessionURL != "" {
		o := session.Options{URL: c.SessionURL, Secret: []byte(c.SessionSecret)}
		if err := o.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--session-revoke-url/--session-revoke-secret: %w", err))
		}
	}
	if c.SessionAttempts < 1 || c.SessionAttempts > 50 {
		errs = append(errs, fmt.Errorf("--session-revoke-attempts: %d; want 1..50", c.SessionAttempts))
	}
	if c.ResendAfter < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--lock-resend-after: %s is below 10ms", c.ResendAfter))
	}
	if c.ResendMax < c.ResendAfter {
		errs = append(errs, fmt.Errorf("--lock-resend-max: %s is below --lock-resend-after", c.ResendMax))
	}
	if c.GiveUp < c.ResendAfter {
		errs = append(errs, fmt.Errorf("--lock-give-up: %s is below --lock-resend-after", c.GiveUp))
	}
	if c.PendingSLA <= 0 {
		errs = append(errs, errors.New("--revocation-sla: must be positive"))
	}
	if k := c.Attest.ChallengeKey; k != "" && len(k) < 32 {
		errs = append(errs, errors.New("--attest-challenge-key: at least 32 bytes"))
	}
	if c.Attest.configured() {
		if err := c.Attest.config().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--attest-*: %w", err))
		}
	}
	return errors.Join(errs...)
}

// configured reports whether any attestation format has its apps set.
func (a AttestConfig) configured() bool {
	return len(a.Formats) > 0 || len(a.AndroidPackages) > 0 || len(a.AppleApps) > 0 || len(a.WebAuthnRPIDs) > 0
}

func (a AttestConfig) config() attest.Config {
	return attest.Config{
		Formats: a.Formats,
		Android: attest.AndroidOptions{Roots: attest.Roots{Files: a.AndroidRoots}, PackageNames: a.AndroidPackages,
			SigningCertDigests: a.AndroidDigests, MinSecurityLevel: attest.SecurityLevel(a.AndroidMinLevel),
			RequireVerifiedBoot: a.AndroidVerifiedBoot},
		Apple: attest.AppleOptions{Roots: attest.Roots{Files: a.AppleRoots}, AppIDs: a.AppleApps, AllowDevelopment: a.AppleDev},
		WebAuthn: attest.WebAuthnOptions{Roots: attest.Roots{Files: a.WebAuthnRoots}, RPIDs: a.WebAuthnRPIDs,
			Origins: a.WebAuthnOrigins, AllowSelfAttestation: a.WebAuthnSelf},
	}
}

// controlPlane is the credential control plane: its API (routes, and the
// Suspend automated responders call) and its Kafka processor (Run).
type controlPlane struct {
	*api.API
	stream *stream.Processor
}

func (c controlPlane) Run(ctx context.Context) error { return c.stream.Run(ctx) }

// refusals is the control plane as the responders' Suspender: what the
// control plane refuses for good (an unknown credential, a transition the
// lifecycle does not allow) is a permanent error the responder records as
// failed; anything else (the audit log or Kafka away) is transient and the
// responder tries again.
type refusals struct{ respond.Suspender }

func (r refusals) Suspend(ctx context.Context, credentialID, reason, actor string) error {
	err := r.Suspender.Suspend(ctx, credentialID, reason, actor)
	var illegal *lifecycle.TransitionError
	switch {
	case errors.Is(err, control.ErrNotFound):
		return bus.Permanent("unknown_credential", err)
	case errors.As(err, &illegal):
		return bus.Permanent("invalid_transition", err)
	}
	return err
}

// newControl builds the credential control plane on the audit log. The
// plane feeds locks (the normalizer's registry) from credential.events.
func newControl(cfg ControlConfig, bc bus.Config, conn driver.Conn, auditLog *audit.Store, locks *registry.Registry, key []byte,
	reg prometheus.Registerer, logger *slog.Logger, policy *grant.Checker,
	verifySubjects func(context.Context, []string, []string) ([]string, error)) (controlPlane, error) {
	logger = logger.With("part", "control")
	so := stream.Options{Bus: bc, Conn: conn, Registry: locks, Audit: auditLog, Logger: logger,
		Registerer: reg, MaxQueue: cfg.MaxQueue, PendingSLA: cfg.PendingSLA, Enforcement: policy,
		ResendAfter: cfg.ResendAfter, ResendMax: cfg.ResendMax, GiveUp: cfg.GiveUp}
	if cfg.SessionURL != "" {
		c, err := session.New(session.Options{URL: cfg.SessionURL, Secret: []byte(cfg.SessionSecret),
			Attempts: cfg.SessionAttempts, Timeout: cfg.SessionTimeout})
		if err != nil {
			return controlPlane{}, fmt.Errorf("--session-revoke-url: %w", err)
		}
		so.Sessions = c
	} else {
		logger.Warn("no --session-revoke-url: the device-session revocation layer reads not_configured on every revocation")
	}
	proc, err := stream.New(so)
	if err != nil {
		return controlPlane{}, err
	}
	ao := api.Options{State: proc, Conn: conn, Audit: auditLog, Verifier: auditLog, PseudonymKey: key,
		Logger: logger, Registerer: reg, MaxBulk: cfg.MaxBulk, PendingSLA: cfg.PendingSLA, Policy: policy,
		VerifySubjects: verifySubjects}
	if cfg.Attest.configured() {
		v, err := attest.New(cfg.Attest.config())
		if err != nil {
			return controlPlane{}, fmt.Errorf("--attest-*: %w", err)
		}
		ck := []byte(cfg.Attest.ChallengeKey)
		if len(ck) == 0 {
			m := hmac.New(sha256.New, key)
			m.Write([]byte("keyfleet attestation challenge key"))
			ck = m.Sum(nil)
		}
		ch, err := attest.NewChallenger(ck, cfg.Attest.ChallengeTTL)
		if err != nil {
			return controlPlane{}, fmt.Errorf("--attest-challenge-key: %w", err)
		}
		ao.Attester, ao.Challenges = v, ch
		logger.Info("attestation verification configured", "formats", v.Formats())
	} else {
		logger.Warn("no attestation formats configured (--attest-android-packages, --attest-apple-app-ids, --attest-webauthn-rp-ids): " +
			"evidence is refused and no credential can be activated")
	}
	ctlAPI, err := api.New(ao)
	if err != nil {
		return controlPlane{}, err
	}
	return controlPlane{API: ctlAPI, stream: proc}, nil
}
