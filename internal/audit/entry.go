// Package audit is keyfleet's tamper-evident admin audit log: append-only,
// hash-chained entries stored in ClickHouse, verifiable end to end.
package audit

import "context"

// Entry is one audited admin action. Secrets and personal data never go in
// raw: callers put keyed hashes (or pseudonymous ids) in Target and Details.
type Entry struct {
	Actor string `json:"actor"` // token id, responder, system
	// ActorName is the actor's name (a token's name, not unique); when
	// empty the store looks it up (Options.ActorName). Stored in details.
	ActorName string            `json:"actor_name,omitempty"`
	Action    string            `json:"action"` // e.g. credential.issue, credential.revoke, alert.status, export, retention.drop
	Target    string            `json:"target"` // the object acted on (credential id, alert id, table/partition)
	Details   map[string]string `json:"details,omitempty"`
	TsMs      int64             `json:"ts_ms"`
}

// Appender appends entries to the audit log. *Store implements it; the
// parts that audit what they do depend on this, not on the store.
type Appender interface {
	Append(ctx context.Context, e Entry) error
}
