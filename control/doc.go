// Package control is keyfleet's credential control plane: the lifecycle of
// phone-based door keys (requested → approved → issued → pending_activation
// → active ⇄ suspended → revoked → archived, the table in control/lifecycle),
// queued idempotent provisioning, layered revocation with measured latency,
// break-glass access and the KPIs.
//
// # Layout
//
// This package is the pure part: records and commands, role templates,
// the request and response documents (importable without Kafka, ClickHouse
// or fiber) and the state machine, Applier, which turns a batch of commands
// and the credentials' current records into new records, lock commands and
// status rows without doing any of it. Beside it:
//   - control/stream runs the Kafka side (Processor.Run): the view followed
//     from credential.events, the owner loop, lock acks, the
//     credential_events writer, expiry, the queue backlog;
//   - control/store holds every ClickHouse statement;
//   - control/api serves HTTP and the operations responders call (Suspend);
//   - control/drill is the revocation drill, an API client.
//
// # State in Kafka
//
// Every change is a command on control.commands, keyed by credential id, so
// one consumer-group member (the owner of the partition) applies all the
// commands of a credential, in order; scale is by partitions. The owner
// checks the command against the transition table and publishes the result
// as full-snapshot records (Record, a superset of event.Credential) on
// credential.events, keyed by credential id. That topic is the state: every
// instance follows all its partitions from the beginning (no consumer
// group), keeps the newest record of each credential (the view that answers
// reads and validates requests) and feeds the normalizer's registry. Before
// applying a batch the owner waits until its view has caught up, so after a
// rebalance it decides on the previous owner's last records. Re-delivered
// commands are recognized by the command ids each record remembers.
//
// # Requests
//
// The API validates a request against the view and the role template,
// appends it to the audit log (no audit, no action), stores its item
// statuses and queues commands; the owner writes each item's outcome. An
// Idempotency-Key derives the request and credential ids, so a retry gets
// the stored answer (same body) or 422 (different body). Past MaxQueue
// queued commands (the owner group's sampled lag plus what was queued
// since) new requests get 429 with Retry-After.
//
// # Revocation
//
// A revocation is layered: the revoked record on credential.events (the
// entitlement), the device session (SessionRevoker), and a revoke command on
// lock.commands for every lock holding the credential. The owner publishes
// the record, then the lock commands while it stores the revocation rows,
// and commits the command only once all of it is durable (a re-delivered
// revocation re-queues its effects). Acks on lock.acks are stored and
// forwarded to the credential's owner, which observes
// keyfleet_control_revocation_latency_seconds when the last lock confirms.
// The revocation resource and the KPIs are read from ClickHouse, so they
// survive restarts and agree across instances.
package control
