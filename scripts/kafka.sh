#!/usr/bin/env bash
# Start, stop or inspect a real single-node Apache Kafka broker (KRaft) on loopback.
#
#   scripts/kafka.sh start   # fetch jars from Maven Central once (cached), format storage, start
#   scripts/kafka.sh stop    # stop the broker this script started
#   scripts/kafka.sh status  # exit 0 when the broker port accepts connections
#   scripts/kafka.sh start-tls DIR [PORT]   # a second, throwaway broker: SASL_SSL only
#   scripts/kafka.sh stop-tls DIR
#       KRaft broker+controller whose one client listener (127.0.0.1:PORT, default
#       19094; controller PORT+1, plaintext, loopback) is SASL_SSL with PLAIN and
#       SCRAM-SHA-512. TLS from DIR/ca.pem, DIR/server.pem, DIR/server-key.pem
#       (PKCS#8; scripts/testca.sh DIR makes them) as PEM keystore/truststore.
#       Users from DIR/kafka-users, lines "MECHANISM NAME PASSWORD" with MECHANISM
#       PLAIN or SCRAM-SHA-512 (written with random passwords when missing: PLAIN
#       admin (the broker's own, super user), PLAIN keyfleet, SCRAM-SHA-512
#       keyfleet-scram); SCRAM users are added at format time (--add-scram).
#       StandardAuthorizer with allow.everyone.if.no.acl.found=true: ACLs a
#       test creates are enforced, resources without ACLs stay open.
#       State in DIR/kafka; start-tls prints sourceable KEYFLEET_KAFKA_TLS_* lines.
#   scripts/kafka.sh start-private DIR [PORT]   # another throwaway broker: PLAINTEXT
#   scripts/kafka.sh stop-private DIR [--kill]
#       A broker of a test's own (the fault-injection suite restarts it; the
#       shared broker on 19092 serves other tests and is never restarted):
#       KRaft broker+controller on 127.0.0.1:PORT (default 19096; controller
#       PORT+1), state in DIR/kafka, formatted once. start-private on an existing
#       DIR starts the same broker again with its data (a restart); stop-private
#       stops it with SIGTERM (--kill: SIGKILL, no clean shutdown) and waits.
#       With KEYFLEET_KAFKA_OWNER_PID set, the broker is killed once that
#       process is gone (a test killed by its timeout runs no cleanup).
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

tls_args() {
  tls_certs=$(cd "${1:?usage: $0 start-tls|stop-tls DIR [PORT]}" && pwd)
  tls_dir="$tls_certs/kafka"
  tls_port="${2:-19094}"
  tls_cport="${KEYFLEET_KAFKA_TLS_CONTROLLER_PORT:-$((tls_port + 1))}"
}

# tls_user MECHANISM [N]: "NAME PASSWORD" of the Nth (default 1st) user of that mechanism.
tls_user() {
  awk -v m="$1" -v n="${2:-1}" '$1 == m && ++i == n { print $2, $3 }' "$tls_certs/kafka-users"
}

tls_print() {
  local plain scram
  plain=$(awk '$1 == "PLAIN" && $2 != "admin" { print $2, $3; exit }' "$tls_certs/kafka-users")
  scram=$(tls_user SCRAM-SHA-512)
  cat <<ENV
KEYFLEET_KAFKA_TLS_BROKERS=127.0.0.1:$tls_port
KEYFLEET_KAFKA_TLS_CA=$tls_certs/ca.pem
KEYFLEET_KAFKA_TLS_USERS=$tls_certs/kafka-users
KEYFLEET_KAFKA_TLS_PLAIN_USER=${plain%% *}
KEYFLEET_KAFKA_TLS_PLAIN_PASSWORD=${plain#* }
KEYFLEET_KAFKA_TLS_SCRAM_USER=${scram%% *}
KEYFLEET_KAFKA_TLS_SCRAM_PASSWORD=${scram#* }
ENV
}

tls_write_config() {
  mkdir -p "$tls_dir/data"
  # Kafka's PEM keystore: the PKCS#8 key and the certificate chain in one file.
  (umask 077 && cat "$tls_certs/server-key.pem" "$tls_certs/server.pem" >"$tls_dir/keystore.pem")
  local admin jaas
  admin=$(awk '$1 == "PLAIN" && $2 == "admin" { print $3; exit }' "$tls_certs/kafka-users")
  [ -n "$admin" ] || { log "start-tls: $tls_certs/kafka-users needs a PLAIN admin user (the broker's own)"; exit 1; }
  jaas="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$admin\""
  jaas+=$(awk '$1 == "PLAIN" { printf " user_%s=\"%s\"", $2, $3 }' "$tls_certs/kafka-users")
  (umask 077 && cat >"$tls_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=SASL_SSL://127.0.0.1:$tls_port,CONTROLLER://127.0.0.1:$tls_cport
advertised.listeners=SASL_SSL://127.0.0.1:$tls_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$tls_cport
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$tls_dir/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls_certs/ca.pem
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=true
log.dirs=$tls_dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  )
}

start_tls() {
  tls_args "$@"
  keep_go_out
  local f
  for f in ca.pem server.pem server-key.pem; do
    [ -f "$tls_certs/$f" ] || { log "start-tls: $tls_certs/$f missing (scripts/testca.sh makes one)"; exit 1; }
  done
  if [ ! -s "$tls_certs/kafka-users" ]; then
    pw() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
    (umask 077 && printf 'PLAIN admin %s\nPLAIN keyfleet %s\nSCRAM-SHA-512 keyfleet-scram %s\n' "$(pw)" "$(pw)" "$(pw)" \
      >"$tls_certs/kafka-users")
  fi
  if port_open "$tls_port"; then tls_print; return; fi
  fetch_jars
  tls_write_config
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  if [ ! -f "$tls_dir/data/meta.properties" ]; then
    local id scram=()
    # A cluster id as StorageTool random-uuid makes it (16 random bytes,
    # unpadded base64url, not starting with '-'), without a second JVM start.
    id=-
    while [ "${id:0:1}" = "-" ]; do id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
    while read -r mech name pass; do
      [ "$mech" = "SCRAM-SHA-512" ] && scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$pass]")
    done <"$tls_certs/kafka-users"
    "$java" -cp "$lib/*" kafka.tools.StorageTool format --standalone -t "$id" \
      -c "$tls_dir/server.properties" "${scram[@]}" >"$tls_dir/format.log" 2>&1 ||
      { cat "$tls_dir/format.log" >&2; exit 1; }
  fi
  log "starting SASL_SSL Kafka $version on 127.0.0.1:$tls_port (controller $tls_cport), data in $tls_dir"
  nohup "$java" -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$lib/*" kafka.Kafka "$tls_dir/server.properties" >"$tls_dir/kafka.log" 2>&1 </dev/null &
  echo $! >"$tls_dir/kafka.pid"
  for _ in $(seq 1 240); do
    if port_open "$tls_port"; then log "ready"; tls_print; return; fi
    if ! kill -0 "$(cat "$tls_dir/kafka.pid")" 2>/dev/null; then break; fi
    sleep 0.25
  done
  log "SASL_SSL broker did not start; last log lines:"
  tail -n 30 "$tls_dir/kafka.log" >&2 || true
  stop_tls "$@"
  exit 1
}

stop_tls() {
  tls_args "$@"
  local pid=""
  [ -f "$tls_dir/kafka.pid" ] && pid=$(cat "$tls_dir/kafka.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping SASL_SSL broker pid $pid"
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$tls_dir/kafka.pid"
}

private_args() {
  priv_dir="$(mkdir -p "${1:?usage: $0 start-private|stop-private DIR [PORT]}" && cd "$1" && pwd)/kafka"
  priv_port="${2:-19096}"
  priv_cport=$((priv_port + 1))
}

start_private() {
  private_args "$@"
  keep_go_out
  if port_open "$priv_port"; then log "private broker already running on 127.0.0.1:$priv_port"; return; fi
  fetch_jars
  mkdir -p "$priv_dir/data"
  cat >"$priv_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$priv_port,CONTROLLER://127.0.0.1:$priv_cport
advertised.listeners=PLAINTEXT://127.0.0.1:$priv_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$priv_cport
inter.broker.listener.name=PLAINTEXT
log.dirs=$priv_dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
message.max.bytes=10485760
PROPS
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  if [ ! -f "$priv_dir/data/meta.properties" ]; then
    local id=-
    # A cluster id as StorageTool random-uuid makes it, without a second JVM start.
    while [ "${id:0:1}" = "-" ]; do id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
    "$java" -cp "$lib/*" kafka.tools.StorageTool format --standalone -t "$id" \
      -c "$priv_dir/server.properties" >"$priv_dir/format.log" 2>&1 || { cat "$priv_dir/format.log" >&2; exit 1; }
  fi
  log "starting private Kafka $version on 127.0.0.1:$priv_port (controller $priv_cport), data in $priv_dir"
  nohup "$java" -Xms128m -Xmx384m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$lib/*" kafka.Kafka "$priv_dir/server.properties" >>"$priv_dir/kafka.log" 2>&1 </dev/null &
  local bpid=$!
  echo "$bpid" >"$priv_dir/kafka.pid"
  # KEYFLEET_KAFKA_OWNER_PID: the broker dies with that process (a test
  # killed by its timeout runs no cleanup) — checked every 2 s.
  if [ -n "${KEYFLEET_KAFKA_OWNER_PID:-}" ]; then
    local owner="$KEYFLEET_KAFKA_OWNER_PID"
    nohup bash -c "while kill -0 $owner 2>/dev/null && kill -0 $bpid 2>/dev/null; do sleep 2; done; kill -9 $bpid 2>/dev/null" \
      >/dev/null 2>&1 </dev/null &
  fi
  for _ in $(seq 1 480); do
    if port_open "$priv_port"; then log "ready"; return; fi
    if ! kill -0 "$(cat "$priv_dir/kafka.pid")" 2>/dev/null; then break; fi
    sleep 0.25
  done
  log "private broker did not start; last log lines:"
  tail -n 30 "$priv_dir/kafka.log" >&2 || true
  stop_private "$1"
  exit 1
}

stop_private() {
  private_args "$1"
  local sig=TERM pid=""
  [ "${2:-}" = "--kill" ] && sig=KILL
  [ -f "$priv_dir/kafka.pid" ] && pid=$(cat "$priv_dir/kafka.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping private broker pid $pid (SIG$sig)"
    kill "-$sig" "$pid"
    for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$priv_dir/kafka.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) port_open "$port" ;;
  start-tls) shift; start_tls "$@" ;;
  stop-tls) shift; stop_tls "$@" ;;
  start-private) shift; start_private "$@" ;;
  stop-private) shift; stop_private "$@" ;;
  *) echo "usage: $0 start|stop|status|start-tls DIR [PORT]|stop-tls DIR|start-private DIR [PORT]|stop-private DIR [--kill]" >&2; exit 2 ;;
esac
