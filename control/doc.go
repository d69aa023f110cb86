// Package control is keyfleet's credential control plane: the lifecycle of
// phone-based door keys (requested → approved → issued → pending_activation
// → active ⇄ suspended → revoked → archived, the table in control/lifecycle),
// queued idempotent provisioning, layered revocation with measured latency,
// break-glass access and the KPIs.
//
// # State in Kafka
//
// Every change is a command on control.commands, keyed by credential id, so
// one consumer-group member (the owner of the partition) applies all the
// commands of a credential, in order; scale is by partitions. The owner
// checks the command against the transition table and publishes the result
// as full-snapshot lifecycle records (Record, a superset of event.Credential)
// on credential.events, keyed by credential id. That topic is the state:
// every instance follows all its partitions from the beginning (no consumer
// group), keeps the newest record of each credential in memory (the view
// that answers reads and validates requests), and feeds the normalizer's
// registry with the records' keyed user references. Before applying a batch
// the owner waits until its view has caught up with credential.events, so
// after a rebalance it decides on the previous owner's last records. A
// writer copies credential.events into ClickHouse (credential_events) for
// history and KPIs. Re-delivered commands are recognized by the command ids
// each record remembers.
//
// # Requests
//
// The API validates a request against the view and the role template,
// appends it to the audit log (no audit, no action), records its status
// items in ClickHouse and queues commands; the owner writes each item's
// outcome (issued, applied, failed with why). An Idempotency-Key derives the
// request id and credential ids deterministically, so a retry finds the
// stored answer (same body) or gets 422 (different body), and even racing
// retries create each credential once. Back-pressure: the queue depth is the
// owner group's lag (sampled) plus what was queued since; past MaxQueue new
// requests get 429 with Retry-After from the drain rate.
//
// # Revocation
//
// A revocation is layered: the revoked record on credential.events (the
// entitlement), the device session (SessionRevoker), and a revoke command on
// lock.commands for every lock holding the credential. The owner publishes
// the revoked record, then the lock commands while it stores the revocation
// and its locks in ClickHouse, and commits the command only once all of it
// is durable (a re-delivered revocation re-queues its effects). Acks on
// lock.acks are stored (lock_acks) and, at the same time, forwarded to the
// credential's owner, which observes
// keyfleet_control_revocation_latency_seconds when the last lock confirms. The revocation resource and the KPIs are computed from
// ClickHouse, so they survive restarts and agree across instances.
package control
