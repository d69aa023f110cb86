// Package pipeline moves lock events from Kafka into ClickHouse, at least
// once: the normalize stage reads lock.events.raw in a consumer group, maps
// each record with the vendor adapters (package normalize) and publishes the
// common-schema events on access.events (bad records go to lock.events.dlq
// with a reason); a Sink reads a topic in a consumer group and inserts its
// records in large batches into a table (Rows says how a record becomes
// columns). Both commit their input offsets only after their output is
// acknowledged, so a crash repeats a batch and never loses one; event_id
// makes the repetition harmless.
package pipeline
