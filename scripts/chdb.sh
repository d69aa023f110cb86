#!/usr/bin/env bash
# Install chDB (ClickHouse in-process, current release) into a venv under ./var,
# for checking keyfleet's SQL against a modern ClickHouse without a server.
#
#   scripts/chdb.sh            # create var/venv-chdb and install chdb-core (idempotent); print the venv's python
#   scripts/chdb.sh version    # the ClickHouse version chDB embeds
#
# Then: <statements as JSON lines> | "$(scripts/chdb.sh)" scripts/chdb_check.py
# Version: KEYFLEET_CHDB_VERSION (default 26.9.0, PyPI's chdb-core). Needs python3
# with venv (Debian: python3-venv, installed by this script when missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version="${KEYFLEET_CHDB_VERSION:-26.9.0}"
venv="${KEYFLEET_CHDB_VENV:-$root/var/venv-chdb}"
py="$venv/bin/python"

log() { echo "chdb: $*" >&2; }

keep_go_out() {
  mkdir -p "$root/var"
  [ -f "$root/var/go.mod" ] || printf 'module keyfleet.local/var\n' >"$root/var/go.mod"
}

installed() {
  [ -x "$py" ] && [ "$(cat "$venv/.chdb-version" 2>/dev/null)" = "$version" ] &&
    "$py" -c 'import chdb' >/dev/null 2>&1
}

install() {
  keep_go_out
  if installed; then return; fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "installing Debian's python3-venv (apt-get)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  log "installing chdb-core==$version into $venv (PyPI)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # --no-deps: pandas, pyarrow and numpy (330 MB of the 890 MB) serve chDB's
  # DataFrame paths; running SQL and reading text results needs none of them.
  "$py" -m pip install -q --disable-pip-version-check --no-deps "chdb-core==$version" >&2
  "$py" -c 'import chdb; chdb.query("SELECT 1", "TSV")' || { log "chdb does not run"; exit 1; }
  echo "$version" >"$venv/.chdb-version"
}

case "${1:-}" in
  "") install; echo "$py" ;;
  version) install; "$py" -c 'import chdb; print(chdb.query("SELECT version()", "TSV").bytes().decode().strip())' ;;
  *) echo "usage: $0 [version]" >&2; exit 2 ;;
esac
