#!/usr/bin/env bash
# Start, stop or inspect a standalone Apache ZooKeeper on loopback (the
# coordination service replicated ClickHouse tables and ON CLUSTER DDL need).
#
#   scripts/zookeeper.sh start   # fetch jars from Maven Central once (cached), start
#   scripts/zookeeper.sh stop    # stop the server this script started
#   scripts/zookeeper.sh status  # exit 0 when the server answers (four-letter "srvr")
#   scripts/zookeeper.sh cli ARGS  # zkCli against it, e.g. cli create /clickhouse-keyfleet ""
#
# Idempotent. Jars are cached in KEYFLEET_CACHE (default ~/.cache/keyfleet); config
# and data live under ./var/zookeeper. Port: KEYFLEET_ZK_PORT (default 12181).
# The AdminServer (Jetty, :8080) is off; only the client port is opened.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="${KEYFLEET_CACHE:-$HOME/.cache/keyfleet}"
version=$(sed -n 's#.*<zookeeper.version>\(.*\)</zookeeper.version>.*#\1#p' "$root/deploy/zookeeper/pom.xml")
# The cache is keyed by the pom's content, so a changed dependency list refetches.
lib="$cache/zookeeper-$version-$(sha256sum "$root/deploy/zookeeper/pom.xml" | cut -c1-8)/lib"
dir="${KEYFLEET_ZK_DIR:-$root/var/zookeeper}"
port="${KEYFLEET_ZK_PORT:-12181}"
pidfile="$dir/zookeeper.pid"

# A go.mod makes ./var a module of its own, so `go test ./...` and `go vet
# ./...` never walk the servers' data directories while they change.
keep_go_out() {
  mkdir -p "$root/var"
  [ -f "$root/var/go.mod" ] || printf 'module keyfleet.local/var\n' >"$root/var/go.mod"
}

log() { echo "zookeeper: $*" >&2; }

# ZooKeeper's four-letter "srvr" names the server's mode once it serves
# requests ("ruok" says "imok" even when loading the data failed).
answers() {
  local reply
  reply=$( { exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'srvr' >&3 && timeout 3 cat <&3; } 2>/dev/null) || true
  [[ "$reply" == *"Mode: "* ]]
}

fetch_jars() {
  if [ -f "$lib/.complete" ]; then return; fi
  log "fetching Apache ZooKeeper $version jars from Maven Central into $lib"
  mkdir -p "$lib"
  mvn -q -B -Dstyle.color=never -f "$root/deploy/zookeeper/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$lib" -DincludeScope=runtime >&2
  touch "$lib/.complete"
}

write_config() {
  mkdir -p "$dir/data"
  cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=200
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr,stat,conf
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CFG
}

start() {
  keep_go_out
  if answers; then log "already running on 127.0.0.1:$port"; return; fi
  fetch_jars
  write_config
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  log "starting ZooKeeper $version on 127.0.0.1:$port, data in $dir"
  nohup "$java" -Xms64m -Xmx256m -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dzookeeper.jmx.log4j.disable=true \
    -cp "$lib/*" org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
    >"$dir/zookeeper.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if answers; then log "ready"; return; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
    sleep 0.25
  done
  log "did not start; last log lines:"
  tail -n 30 "$dir/zookeeper.log" >&2 || true
  exit 1
}

stop() {
  local pid=""
  [ -f "$pidfile" ] && pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping pid $pid"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

cli() {
  fetch_jars
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  "$java" -Xmx128m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$lib/*" \
    org.apache.zookeeper.ZooKeeperMain -server "127.0.0.1:$port" "$@"
}

case "${1:-}" in
  start) start ;;
  cli) shift; cli "$@" ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status|cli ARGS" >&2; exit 2 ;;
esac
