#!/usr/bin/env bash
# Start, stop or inspect the project's local ClickHouse server.
#
#   scripts/clickhouse.sh start   # install Debian's clickhouse-server if missing, start on loopback
#   scripts/clickhouse.sh stop    # stop the server this script started
#   scripts/clickhouse.sh status  # exit 0 when the server answers
#   scripts/clickhouse.sh install # only install Debian's clickhouse-server if missing
#
# Idempotent: start on a running server and stop on a stopped one do nothing.
# Config and data live under ./var/clickhouse; the server listens on 127.0.0.1 only.
# Ports: KEYFLEET_CH_TCP_PORT (native, default 19000), KEYFLEET_CH_HTTP_PORT (default 18123).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="${KEYFLEET_CH_DIR:-$root/var/clickhouse}"
tcp_port="${KEYFLEET_CH_TCP_PORT:-19000}"
http_port="${KEYFLEET_CH_HTTP_PORT:-18123}"
pidfile="$dir/clickhouse.pid"

# A go.mod makes ./var a module of its own, so `go test ./...` and `go vet
# ./...` never walk the servers' data directories while they change.
keep_go_out() {
  mkdir -p "$root/var"
  [ -f "$root/var/go.mod" ] || printf 'module keyfleet.local/var\n' >"$root/var/go.mod"
}

log() { echo "clickhouse: $*" >&2; }

install() {
  if command -v clickhouse-server >/dev/null 2>&1; then return; fi
  log "installing Debian's clickhouse-server (apt-get)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
  # The package may start a system-wide server on the default ports; we run our own.
  $sudo systemctl stop clickhouse-server >/dev/null 2>&1 || true
}

answers() {
  curl -fsS "http://127.0.0.1:${http_port}/ping" >/dev/null 2>&1
}

write_config() {
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  sed -e "s#@DIR@#$dir#g" -e "s#@TCP_PORT@#$tcp_port#g" -e "s#@HTTP_PORT@#$http_port#g" \
    "$root/deploy/clickhouse/config.xml.in" >"$dir/config.xml"
  cp "$root/deploy/clickhouse/users.xml" "$dir/users.xml"
}

start() {
  keep_go_out
  if answers; then log "already running on 127.0.0.1:${tcp_port}"; return; fi
  install
  write_config
  log "starting on 127.0.0.1:${tcp_port} (http ${http_port}), data in $dir"
  # clickhouse-server 18.16 writes no --pid-file: the script records the pid.
  (cd "$dir" && { nohup clickhouse-server --config-file="$dir/config.xml" \
    >"$dir/log/stdout.log" 2>&1 & echo $! >"$pidfile"; }) </dev/null >/dev/null 2>&1
  for _ in $(seq 1 120); do
    if answers; then log "ready"; return; fi
    sleep 0.5
  done
  log "did not answer within 60s; last log lines:"
  tail -n 30 "$dir/log/clickhouse-server.err.log" >&2 || true
  exit 1
}

stop() {
  # The server of this data directory, found by its config (also one started
  # before the script recorded pids), else by the recorded pid.
  local pid
  pid=$(pgrep -f -- "clickhouse-server --config-file=$dir/config.xml" | head -n1 || true)
  if [ -z "$pid" ] && [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
  fi
  if [ -n "$pid" ]; then
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
  status) answers ;;
  install) install ;;
  *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
