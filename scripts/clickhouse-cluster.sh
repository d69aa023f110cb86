#!/usr/bin/env bash
# Start, stop or inspect a local two-node ClickHouse cluster (replicated tables,
# ON CLUSTER DDL, Distributed tables) beside the project's single server.
#
#   scripts/clickhouse-cluster.sh start          # ZooKeeper (scripts/zookeeper.sh) + both nodes
#   scripts/clickhouse-cluster.sh stop           # both nodes, and ZooKeeper if start started it
#   scripts/clickhouse-cluster.sh status         # exit 0 when both nodes answer
#   scripts/clickhouse-cluster.sh stop-node N    # stop node N (1 or 2) only, for failover tests
#   scripts/clickhouse-cluster.sh start-node N   # start node N again
#   scripts/clickhouse-cluster.sh check          # self-check: replicate, fail over, catch up
#   scripts/clickhouse-cluster.sh addrs          # print the nodes' native addresses, comma-separated
#
# Idempotent. The same clickhouse-server binary as scripts/clickhouse.sh (Debian's
# 18.16, installed by that script when missing); config and data under
# ./var/clickhouse-cluster/chN; loopback only. Clusters (remote_servers):
#   keyfleet          1 shard x 2 replicas, internal_replication (macros {shard}=01, {replica}=chN)
#   keyfleet_sharded  2 shards x 1 replica (macro {sharded_shard}=0N)
# Ports (node N = 1, 2): native KEYFLEET_CHC_TCP_BASE+N (19100+N), HTTP
# KEYFLEET_CHC_HTTP_BASE+N (18200+N), interserver KEYFLEET_CHC_INTERSERVER_BASE+N
# (19300+N); ZooKeeper KEYFLEET_ZK_PORT (12181). The single server on 19000 is untouched.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
base="${KEYFLEET_CHC_DIR:-$root/var/clickhouse-cluster}"
tcp_base="${KEYFLEET_CHC_TCP_BASE:-19100}"
http_base="${KEYFLEET_CHC_HTTP_BASE:-18200}"
is_base="${KEYFLEET_CHC_INTERSERVER_BASE:-19300}"
export KEYFLEET_ZK_PORT="${KEYFLEET_ZK_PORT:-12181}"
nodes=(1 2)

log() { echo "clickhouse-cluster: $*" >&2; }

tcp_port() { echo $((tcp_base + $1)); }
http_port() { echo $((http_base + $1)); }
node_dir() { echo "$base/ch$1"; }

answers() { curl -fsS "http://127.0.0.1:$(http_port "$1")/ping" >/dev/null 2>&1; }

write_config() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log" "$dir/config.d"
  sed -e "s#@DIR@#$dir#g" -e "s#@TCP_PORT@#$(tcp_port "$n")#g" -e "s#@HTTP_PORT@#$(http_port "$n")#g" \
    "$root/deploy/clickhouse/config.xml.in" >"$dir/config.xml"
  cp "$root/deploy/clickhouse/users.xml" "$dir/users.xml"
  # keyfleet's queries with an IN subquery on another Distributed table need
  # distributed_product_mode=global on the two-shard cluster (docs/deploy.md);
  # clickhouse-go cannot send that string setting to 18.16, so the profile says it.
  mkdir -p "$dir/users.d"
  cat >"$dir/users.d/keyfleet-cluster.xml" <<'XML'
<?xml version="1.0"?>
<yandex><profiles><default><distributed_product_mode>global</distributed_product_mode></default></profiles></yandex>
XML
  sed -e "s#@ZK_PORT@#$KEYFLEET_ZK_PORT#g" -e "s#@INTERSERVER_PORT@#$((is_base + n))#g" \
    -e "s#@REPLICA@#ch$n#g" -e "s#@SHARDED_SHARD@#0$n#g" \
    -e "s#@N1_TCP_PORT@#$(tcp_port 1)#g" -e "s#@N2_TCP_PORT@#$(tcp_port 2)#g" \
    "$root/deploy/clickhouse/cluster.xml.in" >"$dir/config.d/cluster.xml"
}

node_pid() {
  local dir
  dir=$(node_dir "$1")
  pgrep -f -- "clickhouse-server --config-file=$dir/config.xml" | head -n1 || true
}

launch_node() {
  local n=$1 dir
  dir=$(node_dir "$n")
  if answers "$n"; then return; fi
  write_config "$n"
  log "starting ch$n on 127.0.0.1:$(tcp_port "$n") (http $(http_port "$n"), interserver $((is_base + n)))"
  # clickhouse-server 18.16 writes no --pid-file: the script records the pid.
  (cd "$dir" && { nohup clickhouse-server --config-file="$dir/config.xml" \
    >"$dir/log/stdout.log" 2>&1 & echo $! >"$dir/clickhouse.pid"; }) </dev/null >/dev/null 2>&1
}

wait_node() {
  local n=$1
  for _ in $(seq 1 240); do
    if answers "$n"; then return; fi
    sleep 0.25
  done
  log "ch$n did not answer within 60s; last log lines:"
  tail -n 30 "$(node_dir "$n")/log/clickhouse-server.err.log" >&2 || true
  exit 1
}

# signal_node N: send node N SIGTERM; print its pid (nothing when not running).
signal_node() {
  local n=$1 pid dir
  dir=$(node_dir "$n")
  pid=$(node_pid "$n")
  if [ -z "$pid" ] && [ -f "$dir/clickhouse.pid" ]; then pid=$(cat "$dir/clickhouse.pid"); fi
  rm -f "$dir/clickhouse.pid"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping ch$n (pid $pid)"
    kill "$pid"
    echo "$pid"
  fi
}

wait_gone() {
  local pid
  for pid in "$@"; do
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

stop_node() {
  local pid
  pid=$(signal_node "$1")
  [ -z "$pid" ] || wait_gone "$pid"
}

start() {
  # A go.mod makes ./var a module of its own, so `go test ./...` and `go vet
  # ./...` never walk the servers' data directories while they change.
  mkdir -p "$root/var"
  [ -f "$root/var/go.mod" ] || printf 'module keyfleet.local/var\n' >"$root/var/go.mod"
  "$root/scripts/clickhouse.sh" install
  mkdir -p "$base"
  if ! "$root/scripts/zookeeper.sh" status; then
    "$root/scripts/zookeeper.sh" start
    touch "$base/.started-zookeeper"
  fi
  for n in "${nodes[@]}"; do launch_node "$n"; done
  for n in "${nodes[@]}"; do wait_node "$n"; done
  log "ready: keyfleet = 127.0.0.1:$(tcp_port 1), 127.0.0.1:$(tcp_port 2)"
}

stop() {
  local pids=()
  for n in "${nodes[@]}"; do pids+=($(signal_node "$n")); done
  [ ${#pids[@]} -eq 0 ] || wait_gone "${pids[@]}"
  if [ -f "$base/.started-zookeeper" ]; then
    "$root/scripts/zookeeper.sh" stop
    rm -f "$base/.started-zookeeper"
  fi
}

status() {
  for n in "${nodes[@]}"; do answers "$n" || return 1; done
}

node_arg() {
  case "${1:-}" in
    1 | 2) echo "$1" ;;
    *) echo "usage: $0 stop-node|start-node 1|2" >&2; exit 2 ;;
  esac
}

# q N SQL [client flags]: run SQL on node N, print the result (TSV). 18.16's
# INSERT takes no SETTINGS clause (and CREATE TABLE ... SETTINGS means the
# engine's), so query settings go as client flags.
q() {
  local n=$1 sql=$2
  shift 2
  clickhouse-client --host 127.0.0.1 --port "$(tcp_port "$n")" "$@" --query "$sql"
}

expect() {
  local what=$1 want=$2 got=$3
  if [ "$got" != "$want" ]; then log "check FAILED: $what: want '$want', got '$got'"; exit 1; fi
  log "ok: $what = $got"
}

# check: the cluster does what keyfleet needs of it. ON CLUSTER DDL, a
# replicated table and a Distributed table over it; rows written through the
# Distributed table appear on both replicas; with one node down reads and writes
# go on through the other; the node catches up (rows and DDL) when it returns;
# the two-shard cluster splits rows between the nodes.
check() {
  status || { log "cluster not running (start it first)"; exit 1; }
  local db="kfcheck_$$" t0 out
  t0=$(date +%s%N)
  q 1 "CREATE DATABASE $db ON CLUSTER keyfleet" >/dev/null
  q 1 "CREATE TABLE $db.t_local ON CLUSTER keyfleet (id UInt64, v UInt32, body String)
       ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/$db/t_local', '{replica}', v)
       ORDER BY id" >/dev/null
  q 1 "CREATE TABLE $db.t ON CLUSTER keyfleet AS $db.t_local
       ENGINE = Distributed(keyfleet, $db, t_local, rand())" >/dev/null
  log "ok: ON CLUSTER DDL on both nodes ($((($(date +%s%N) - t0) / 1000000)) ms)"

  # insert_distributed_sync: the INSERT returns once a replica has the rows
  # (the default queues them on the initiating node and sends them later).
  q 1 "INSERT INTO $db.t SELECT number, 1, 'a' FROM system.numbers LIMIT 100" --insert_distributed_sync=1
  q 1 "SYSTEM SYNC REPLICA $db.t_local"
  q 2 "SYSTEM SYNC REPLICA $db.t_local"
  expect "rows on ch1 (local)" 100 "$(q 1 "SELECT count() FROM $db.t_local")"
  expect "rows on ch2 (local)" 100 "$(q 2 "SELECT count() FROM $db.t_local")"
  expect "rows via Distributed on ch2" 100 "$(q 2 "SELECT count() FROM $db.t")"

  # ch2 down. prefer_localhost_replica=0 makes the Distributed table pick a
  # replica at random, so these go through its failover (to ch1), not just
  # to the local replica.
  stop_node 2
  local far=(--prefer_localhost_replica=0 --insert_distributed_sync=1)
  for i in 1 2 3 4; do
    q 1 "INSERT INTO $db.t SELECT number + 25 * ($i - 1), 2, 'b' FROM system.numbers LIMIT 25" "${far[@]}"
  done
  q 1 "INSERT INTO $db.t SELECT number + 100, 1, 'c' FROM system.numbers LIMIT 10" "${far[@]}"
  expect "rows via Distributed on ch1, ch2 down (FINAL)" 110 \
    "$(q 1 "SELECT count() FROM $db.t FINAL" --prefer_localhost_replica=0)"
  expect "replaced rows via Distributed on ch1, ch2 down (FINAL)" 100 \
    "$(q 1 "SELECT count() FROM $db.t FINAL WHERE v = 2" --prefer_localhost_replica=0)"
  expect "insert_quorum=2 refused with one replica down" "Code: 285" \
    "$(q 1 "INSERT INTO $db.t_local VALUES (999, 1, 'q')" --insert_quorum=2 2>&1 | grep -o 'Code: 285' || true)"
  # ON CLUSTER with a node down waits distributed_ddl_task_timeout (180 s by
  # default), fails with code 159, and leaves the DDL queued for the node.
  out=$(q 1 "ALTER TABLE $db.t_local ON CLUSTER keyfleet ADD COLUMN extra UInt8 DEFAULT 7" \
    --distributed_ddl_task_timeout=1 2>&1 || true)
  expect "ON CLUSTER DDL with ch2 down times out" "Code: 159" "$(grep -o 'Code: 159' <<<"$out" | head -n1)"

  launch_node 2
  wait_node 2
  q 2 "SYSTEM SYNC REPLICA $db.t_local"
  expect "rows on ch2 after catching up (FINAL)" 110 "$(q 2 "SELECT count() FROM $db.t_local FINAL")"
  expect "replaced rows on ch2 after catching up (FINAL)" 100 \
    "$(q 2 "SELECT count() FROM $db.t_local FINAL WHERE v = 2")"
  for _ in $(seq 1 40); do
    [ "$(q 2 "SELECT count() FROM system.columns WHERE database = '$db' AND table = 't_local' AND name = 'extra'")" = 1 ] && break
    sleep 0.25
  done
  expect "queued DDL applied on ch2 after it returned" 7 "$(q 2 "SELECT any(extra) FROM $db.t_local")"

  q 1 "CREATE TABLE $db.s_local ON CLUSTER keyfleet_sharded (id UInt64) ENGINE = MergeTree ORDER BY id" >/dev/null
  q 1 "CREATE TABLE $db.s ON CLUSTER keyfleet_sharded AS $db.s_local
       ENGINE = Distributed(keyfleet_sharded, $db, s_local, id)" >/dev/null
  q 1 "INSERT INTO $db.s SELECT number FROM system.numbers LIMIT 100" --insert_distributed_sync=1
  expect "keyfleet_sharded: rows on ch1 / ch2 / total" "50/50/100" \
    "$(q 1 "SELECT count() FROM $db.s_local")/$(q 2 "SELECT count() FROM $db.s_local")/$(q 2 "SELECT count() FROM $db.s")"

  q 1 "DROP DATABASE $db ON CLUSTER keyfleet" >/dev/null
  log "check passed"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  stop-node) stop_node "$(node_arg "${2:-}")" ;;
  start-node) n=$(node_arg "${2:-}"); launch_node "$n"; wait_node "$n" ;;
  check) check ;;
  addrs) echo "127.0.0.1:$(tcp_port 1),127.0.0.1:$(tcp_port 2)" ;;
  *) echo "usage: $0 start|stop|status|stop-node N|start-node N|check|addrs" >&2; exit 2 ;;
esac
