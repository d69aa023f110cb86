#!/usr/bin/env bash
# Start, stop or inspect the project's local ClickHouse server.
#
#   scripts/clickhouse.sh start   # install Debian's clickhouse-server if missing, start on loopback
#   scripts/clickhouse.sh stop    # stop the server this script started
#   scripts/clickhouse.sh status  # exit 0 when the server answers
#   scripts/clickhouse.sh install # only install Debian's clickhouse-server if missing
#   scripts/clickhouse.sh start-tls DIR [NATIVE_TLS_PORT [HTTPS_PORT]]
#   scripts/clickhouse.sh stop-tls DIR
#       A second, throwaway server speaking TLS only: the secure native port
#       (default 19440) and HTTPS (default 18443), certificate from DIR/ca.pem,
#       DIR/server.pem, DIR/server-key.pem (scripts/testca.sh DIR makes them),
#       users default, keyfleet and keyfleet_ro (readonly) with the password in
#       DIR/password (generated when missing; a final newline is not part of it). State in DIR/clickhouse. start-tls
#       prints sourceable KEYFLEET_CH_TLS_* lines; KEYFLEET_CH_TLS_VERIFY=strict
#       makes clients present a certificate signed by DIR/ca.pem
#       (start-tls's own probe uses DIR/client.pem, DIR/client-key.pem).
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

tls_args() {
  tls_certs=$(cd "${1:?usage: $0 start-tls|stop-tls DIR [NATIVE_TLS_PORT [HTTPS_PORT]]}" && pwd)
  tls_dir="$tls_certs/clickhouse"
  tls_tcp_port="${2:-19440}"
  tls_https_port="${3:-18443}"
}

tls_answers() {
  local cert=()
  if [ -f "$tls_certs/client.pem" ]; then cert=(--cert "$tls_certs/client.pem" --key "$tls_certs/client-key.pem"); fi
  curl -fsS --cacert "$tls_certs/ca.pem" "${cert[@]}" "https://127.0.0.1:${tls_https_port}/ping" >/dev/null 2>&1
}

tls_print() {
  cat <<ENV
KEYFLEET_CH_TLS_ADDR=127.0.0.1:$tls_tcp_port
KEYFLEET_CH_HTTPS_ADDR=127.0.0.1:$tls_https_port
KEYFLEET_CH_TLS_USER=keyfleet
KEYFLEET_CH_TLS_PASSWORD=$(tr -d '\n' <"$tls_certs/password")
KEYFLEET_CH_TLS_CA=$tls_certs/ca.pem
KEYFLEET_CH_TLS_CLIENT_CONFIG=$tls_dir/client.xml
ENV
}

start_tls() {
  tls_args "$@"
  keep_go_out
  local f
  for f in ca.pem server.pem server-key.pem; do
    [ -f "$tls_certs/$f" ] || { log "start-tls: $tls_certs/$f missing (scripts/testca.sh makes one)"; exit 1; }
  done
  if [ ! -s "$tls_certs/password" ]; then
    (umask 077 && printf '%s' "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >"$tls_certs/password")
  fi
  if tls_answers; then tls_print; return; fi
  install
  mkdir -p "$tls_dir/data" "$tls_dir/tmp" "$tls_dir/user_files" "$tls_dir/format_schemas" "$tls_dir/log" "$tls_dir/config.d"
  # The shared template without its plaintext ports.
  sed -e "s#@DIR@#$tls_dir#g" -e '/<http_port>/d' -e '/<tcp_port>/d' \
    "$root/deploy/clickhouse/config.xml.in" >"$tls_dir/config.xml"
  sed -e "s#@TCP_TLS_PORT@#$tls_tcp_port#g" -e "s#@HTTPS_PORT@#$tls_https_port#g" \
    -e "s#@CERT_DIR@#$tls_certs#g" -e "s#@VERIFY@#${KEYFLEET_CH_TLS_VERIFY:-none}#g" \
    "$root/deploy/clickhouse/tls.xml.in" >"$tls_dir/config.d/tls.xml"
  # For clickhouse-client --secure --config-file (it trusts only the CA).
  cat >"$tls_dir/client.xml" <<XML
<config><openSSL><client>
  <caConfig>$tls_certs/ca.pem</caConfig><loadDefaultCAFile>false</loadDefaultCAFile>
  <verificationMode>strict</verificationMode>
  <invalidCertificateHandler><name>RejectCertificateHandler</name></invalidCertificateHandler>
</client></openSSL></config>
XML
  local sum
  sum=$(tr -d '\n' <"$tls_certs/password" | sha256sum | cut -d' ' -f1)
  sed -e "s#@PASSWORD_SHA256@#$sum#g" "$root/deploy/clickhouse/users-tls.xml.in" >"$tls_dir/users.xml"
  log "starting TLS server on 127.0.0.1:$tls_tcp_port (native TLS), https $tls_https_port, data in $tls_dir"
  (cd "$tls_dir" && { nohup clickhouse-server --config-file="$tls_dir/config.xml" \
    >"$tls_dir/log/stdout.log" 2>&1 & echo $! >"$tls_dir/clickhouse.pid"; }) </dev/null >/dev/null 2>&1
  for _ in $(seq 1 240); do
    if tls_answers; then log "ready"; tls_print; return; fi
    sleep 0.25
  done
  log "TLS server did not answer within 60s; last log lines:"
  tail -n 30 "$tls_dir/log/clickhouse-server.err.log" >&2 || true
  stop_tls "$@"
  exit 1
}

stop_tls() {
  tls_args "$@"
  local pid=""
  [ -f "$tls_dir/clickhouse.pid" ] && pid=$(cat "$tls_dir/clickhouse.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping TLS server pid $pid"
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$tls_dir/clickhouse.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  install) install ;;
  start-tls) shift; start_tls "$@" ;;
  stop-tls) shift; stop_tls "$@" ;;
  *) echo "usage: $0 start|stop|status|install|start-tls DIR [PORT [HTTPS_PORT]]|stop-tls DIR" >&2; exit 2 ;;
esac
