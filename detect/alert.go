// Package detect holds keyfleet's detectors: a stateful, keyed engine that
// reads normalized access events and credential lifecycle records in event
// time and raises explainable alerts, plus the pure batch checks (stale
// credentials, expired exceptions). The same Engine runs in `keyfleet serve`
// (detect/stream feeds it from Kafka) and in `keyfleet detect --replay`
// (detect/backtest feeds it from a file), so backtests exercise exactly the
// production code.
//
// Time is event time throughout: sliding windows, baselines, suppression
// windows and batch-check clocks advance with the events' ts_ms (the
// watermark), never with the wall clock, so catching up after downtime gives
// the same alerts as live processing.
package detect

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
)

// Detector names: contracts (alert JSON, rules file, labels, metrics).
const (
	UnlockBurst            = "unlock_burst"
	UnattestedDeviceChange = "unattested_device_change"
	UseAfterRevocation     = "use_after_revocation"
	DeniedStorm            = "denied_storm"
	OffSchedule            = "off_schedule"
	EmergencyUnlock        = "emergency_unlock"
	DoorForced             = "door_forced"
	DoorAjar               = "door_ajar"
	StaleCredential        = "stale_credential"
	ExpiredException       = "expired_exception"
	// RevocationOverdue is raised by the control plane (control/stream), not
	// by the engine: a revocation passed its SLA with locks unconfirmed.
	RevocationOverdue = "revocation_overdue"
)

// Detectors lists every detector name.
var Detectors = []string{
	UnlockBurst, UnattestedDeviceChange, UseAfterRevocation, DeniedStorm, OffSchedule,
	EmergencyUnlock, DoorForced, DoorAjar, StaleCredential, ExpiredException, RevocationOverdue, Regression,
}

// Severities, from least to most urgent.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Severities lists the severities in increasing order.
var Severities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// SeverityRank orders severities (0 for an unknown one).
func SeverityRank(s string) int {
	for i, v := range Severities {
		if v == s {
			return i + 1
		}
	}
	return 0
}

// Alert statuses.
const (
	StatusOpen          = "open"
	StatusAcknowledged  = "acknowledged"
	StatusResolved      = "resolved"
	StatusFalsePositive = "false_positive"
)

// Statuses lists every alert status.
var Statuses = []string{StatusOpen, StatusAcknowledged, StatusResolved, StatusFalsePositive}

// MaxEvidence bounds the evidence event ids one alert carries.
const MaxEvidence = 50

// Alert is one detection. JSON names are a contract (alerts topic, alerts
// table, API, replay output).
//
// An alert is emitted when its condition is first met (Revision 0). Repeats of
// the same condition for the same key inside the detector's suppression
// window do not raise new alerts; they are counted, and when the window
// closes (in event time) the alert is emitted once more with the same
// alert_id, a higher revision, SuppressedCount and WindowEndMs updated and the
// repeats' event ids added to Evidence.
type Alert struct {
	AlertID      string `json:"alert_id"`
	Detector     string `json:"detector"`
	Severity     string `json:"severity"`
	SubjectID    string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	DoorID       string `json:"door_id"`
	SiteID       string `json:"site_id"`
	// TsMs is the event time at which the condition was met.
	TsMs          int64 `json:"ts_ms"`
	WindowStartMs int64 `json:"window_start_ms"`
	WindowEndMs   int64 `json:"window_end_ms"`
	// Observed is the value the detector measured (distinct doors, denials,
	// days unused ...); Threshold the value that raised the alert; Baseline
	// what is normal for the key (0 when the detector has none).
	Observed        float64  `json:"observed"`
	Threshold       float64  `json:"threshold"`
	Baseline        float64  `json:"baseline"`
	Evidence        []string `json:"evidence"`
	Explanation     string   `json:"explanation"`
	SuggestedAction string   `json:"suggested_action"`
	SuppressedCount int      `json:"suppressed_count"`
	Status          string   `json:"status"`

	// Revision is 0 when the alert is raised and n for its n-th update.
	Revision int `json:"revision"`
	// RulesVersion is the version of the rules file that raised it.
	RulesVersion int `json:"rules_version"`
	// SourceReceivedMs is received_ms of the event that met the condition
	// (when keyfleet received it); detection latency is measured from it.
	SourceReceivedMs int64 `json:"source_received_ms,omitempty"`
	// DetectedMs is the wall-clock time the alert was produced (set by the
	// stream processor; empty in replays, which stay deterministic).
	DetectedMs int64 `json:"detected_ms,omitempty"`
}

// alertNamespace seeds alert ids (UUIDv5-style, fixed random bytes).
var alertNamespace = []byte{0x61, 0x6c, 0x65, 0x72, 0x74, 0x2d, 0x6b, 0x66, 0x8e, 0x21, 0x47, 0x0b, 0x93, 0x5c, 0x1d, 0x44}

// AlertID returns the deterministic id of an alert: a UUIDv5-style hash of
// the detector, its key and the event time and event that raised it.
// Re-processing the same events (at-least-once delivery, catch-up) gives the
// same ids, so the alerts table and consumers deduplicate them.
func AlertID(detector, key string, tsMs int64, eventID string) string {
	h := sha1.New()
	h.Write(alertNamespace)
	for _, s := range []string{detector, key, strconv.FormatInt(tsMs, 10), eventID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var sum [20]byte
	b := h.Sum(sum[:0])
	b[6] = (b[6] & 0x0f) | 0x50
	b[8] = (b[8] & 0x3f) | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:16])
	return string(out[:])
}
