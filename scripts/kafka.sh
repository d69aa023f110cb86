#!/usr/bin/env bash
# Start, stop or inspect a real single-node Apache Kafka broker (KRaft) on loopback.
#
#   scripts/kafka.sh start   # fetch jars from Maven Central once (cached), format storage, start
#   scripts/kafka.sh stop    # stop the broker this script started
#   scripts/kafka.sh status  # exit 0 when the broker port accepts connections
#
# Idempotent. Jars are cached in KEYFLEET_CACHE (default ~/.cache/keyfleet); the log
# dir and config live under ./var/kafka. Port: KEYFLEET_KAFKA_PORT (default 19092),
# controller port KEYFLEET_KAFKA_CONTROLLER_PORT (default 19093).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="${KEYFLEET_CACHE:-$HOME/.cache/keyfleet}"
version=$(sed -n 's#.*<kafka.version>\(.*\)</kafka.version>.*#\1#p' "$root/deploy/kafka/pom.xml")
lib="$cache/kafka-$version/lib"
dir="${KEYFLEET_KAFKA_DIR:-$root/var/kafka}"
port="${KEYFLEET_KAFKA_PORT:-19092}"
cport="${KEYFLEET_KAFKA_CONTROLLER_PORT:-19093}"
pidfile="$dir/kafka.pid"

# A go.mod makes ./var a module of its own, so `go test ./...` and `go vet
# ./...` never walk the servers' data directories while they change.
keep_go_out() {
  mkdir -p "$root/var"
  [ -f "$root/var/go.mod" ] || printf 'module keyfleet.local/var\n' >"$root/var/go.mod"
}

log() { echo "kafka: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch_jars() {
  if [ -f "$lib/.complete" ]; then return; fi
  log "fetching Apache Kafka $version jars from Maven Central into $lib"
  mkdir -p "$lib"
  mvn -q -B -f "$root/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$lib" -DincludeScope=runtime >&2
  touch "$lib/.complete"
}

write_config() {
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
log.segment.bytes=268435456
message.max.bytes=10485760
PROPS
}

start() {
  keep_go_out
  if port_open "$port"; then log "already running on 127.0.0.1:$port"; return; fi
  fetch_jars
  write_config
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    id=$("$java" -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    "$java" -cp "$lib/*" kafka.tools.StorageTool format --standalone -t "$id" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
  fi
  log "starting Kafka $version on 127.0.0.1:$port, data in $dir"
  nohup "$java" -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$lib/*" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if port_open "$port"; then log "ready"; return; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
    sleep 0.5
  done
  log "did not start; last log lines:"
  tail -n 30 "$dir/kafka.log" >&2 || true
  exit 1
}

stop() {
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping pid $pid"
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) port_open "$port" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
