// Package control is keyfleet's credential control plane: the lifecycle of
// phone-based door keys (requested → approved → issued → pending_activation
// → active ⇄ suspended → revoked → archived, the table in control/lifecycle),
// verified device attestation, queued idempotent provisioning, layered
// revocation reconciled until every lock confirms, drills, break-glass
// access and the KPIs. docs/revocation.md has the contracts (locks, the
// session webhook, attestation) and the drills.
//
// # Layout
//
// This package is the pure part: records and commands, role templates,
// the request and response documents (importable without Kafka, ClickHouse
// or fiber) and the state machine, Applier, which turns a batch of commands
// and the credentials' current records into new records, lock commands and
// status rows without doing any of it. Beside it:
//   - control/stream runs the Kafka side (Processor.Run): the view followed
//     from credential.events, the owner loop, lock acks and ACL resyncs,
//     re-sends and escalations, the session workers, the credential_events
//     writer, expiry, the queue backlog;
//   - control/store holds every ClickHouse statement;
//   - control/api serves HTTP and the operations responders call (Suspend);
//   - control/attest verifies attestation evidence (attesttest mints it);
//   - control/session is the session-revocation webhook's client and
//     contract;
//   - control/drill is the revocation drill, an API client;
//   - control/internal/controltest starts all of it on a simulated estate
//     for tests.
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
// The API validates a request against the view, the lock registry and the
// role template (an unknown site, or door groups without a lock there, is
// refused per item), appends it to the audit log (no audit, no action),
// stores its item statuses and queues commands; the owner writes each
// item's outcome. An Idempotency-Key derives the request and credential
// ids, so a retry gets the stored answer (same body) or 422 (different
// body). A subject gets one live credential per role and device: another
// is 409 naming the existing one (the API checks the view and the request,
// the owner the view and the batch) unless the request allows an
// additional one. Past MaxQueue queued commands (the owner group's sampled
// lag plus what was queued since) new requests get 429 with Retry-After.
//
// # Activation
//
// A credential is issued to pending_activation and opens nothing: its
// locks are recorded but not told. Activation needs evidence from the
// device — a challenge (POST /v1/attestation/challenge, an HMAC over the
// credential, device and expiry) attested by the phone and verified by
// control/attest against the configured roots and apps; a refusal is a
// 422 naming the reason. Only then are grants sent; suspension, a device
// change (back to pending_activation) and revocation take the key off
// its locks again. Attested on a record means a verified attestation.
//
// # Revocation
//
// A revocation has three layers, each done, pending, failed (with why) or
// not_configured — never done without the call having succeeded:
//   - entitlement: the revoked record on credential.events;
//   - device session: the session webhook (control/session) ends the
//     key's session at the wallet provider, with retries; without an
//     endpoint the layer reads not_configured;
//   - locks: a revoke command on lock.commands to every lock holding the
//     credential.
//
// The owner publishes the record, then the lock commands while it stores
// the revocation rows, the command sends and the session rows, and commits
// the command only once all of it is durable (a re-delivered revocation
// re-queues its effects). Session calls run beside it. Acks on lock.acks are
// stored and forwarded to the credential's owner, which observes
// keyfleet_control_revocation_latency_seconds when the last lock confirms.
//
// A command without an applied ack is re-sent (same id and seq, backoff
// with jitter) until acknowledged or given up; the sends are in ClickHouse,
// so a restarted owner, or one that took over a partition, carries on. A
// revocation past the SLA with locks unconfirmed is escalated once: a
// revocation_overdue alert on the alerts topic and the status escalated.
// Every ack reports the lock's ACL version: one other than expected — and
// a lock reporting it is back online — gets an acl_push of its whole list,
// counted as drift or reconnect. The revocation resource, the drills and
// the KPIs are read from ClickHouse, so they survive restarts and agree
// across instances.
package control
