#!/usr/bin/env bash
# Create keyfleet's topics on a production Kafka cluster (3+ brokers), with the
# Kafka distribution's bin/kafka-topics.sh. Idempotent (--if-not-exists).
#
#   BOOTSTRAP=kafka1.example.internal:9093 CLIENT_CONFIG=admin.properties deploy/production/kafka/topics.sh
#
# keyfleet serve also creates missing topics itself (--topic-partitions, the
# brokers' default.replication.factor) and makes credential.events compacted;
# creating them here first fixes partitions, replication and retention up front.
#
# Partitions are keyfleet's unit of scale: N `keyfleet serve` instances share
# each topic's partitions in one consumer group, so PARTITIONS bounds useful
# instances. Raising partitions later re-maps keys (site/credential) to
# partitions: do it while keyfleet is stopped.
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:?set BOOTSTRAP=host:port}
CLIENT_CONFIG=${CLIENT_CONFIG:-}     # SASL_SSL admin client properties (see server.properties.example)
PREFIX=${PREFIX:-}                   # = keyfleet serve --topic-prefix
PARTITIONS=${PARTITIONS:-12}
REPLICATION=${REPLICATION:-3}
MIN_ISR=${MIN_ISR:-2}                # with acks=all: a write survives one broker loss
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}

day=86400000
create() {
  local topic=$1
  shift
  "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" ${CLIENT_CONFIG:+--command-config "$CLIENT_CONFIG"} \
    --create --if-not-exists --topic "$PREFIX$topic" \
    --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config min.insync.replicas="$MIN_ISR" "$@"
}

# Vendor records as received, and the ones the normalizer could not map.
create lock.events.raw      --config retention.ms=$((7 * day))
create lock.events.dlq      --config retention.ms=$((30 * day))
# Normalized events (ClickHouse access_events holds the long history).
create access.events        --config retention.ms=$((7 * day))
create alerts               --config retention.ms=$((30 * day))
# The credential state itself: every instance reads it from the beginning.
# Compacted, never deleted by age.
create credential.events    --config cleanup.policy=compact --config min.compaction.lag.ms=$((1 * day))
create control.commands     --config retention.ms=$((7 * day))
create lock.commands        --config retention.ms=$((7 * day))
create lock.acks            --config retention.ms=$((7 * day))

for t in lock.events.raw lock.events.dlq access.events alerts credential.events control.commands lock.commands lock.acks; do
  "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" ${CLIENT_CONFIG:+--command-config "$CLIENT_CONFIG"} \
    --describe --topic "$PREFIX$t" | head -n 1
done
