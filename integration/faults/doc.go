// Package faults is keyfleet's fault-injection suite (its tests only): each
// scenario runs `keyfleet serve` as a process on real services (ClickHouse,
// Apache Kafka), sends it a known workload — access events through HTTP
// ingest, door alarms that raise alerts the responders act on, credentials
// issued and revoked through the API, a simulated lock gateway
// acknowledging every lock command — and injects one fault:
//
//   - ClickHouse unreachable for 30 s (a cuttable proxy between serve and
//     the shared server);
//   - the Kafka broker stopped and started again (a private broker,
//     scripts/kafka.sh start-private: the shared one serves other tests);
//   - serve killed with SIGKILL and started again;
//   - a poison record in every topic serve consumes;
//   - a slow ClickHouse (the proxy holds every chunk);
//   - a full disk under the embedded broker's data dir (a small tmpfs; needs
//     root, skipped otherwise).
//
// Each asserts that serve kept running (the same process, except after the
// kill), that /readyz was honest during the fault (503 naming the
// dependency) and after it (200), that every event ingest acknowledged is
// stored exactly once (by event_id), that every acknowledged revocation was
// confirmed by every lock, and that the audit log verifies with an entry for
// every acknowledged revocation.
package faults
