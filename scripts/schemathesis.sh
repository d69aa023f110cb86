#!/usr/bin/env bash
# Property-based API tests: schemathesis (PyPI, pinned) against a running
# keyfleet serve, driven by the OpenAPI document it serves.
#
#   scripts/schemathesis.sh URL TOKEN [extra schemathesis run options]
#
# URL is serve's base (http://127.0.0.1:8080), TOKEN an admin token. The first
# run makes a virtualenv under var/venv-schemathesis (KEYFLEET_SCHEMATHESIS_VENV)
# and pip-installs the pinned version. Examples per operation are bounded
# (KEYFLEET_SCHEMATHESIS_EXAMPLES, default 25) and so is the time of each pass
# (KEYFLEET_SCHEMATHESIS_MAX_TIME seconds, default 300); the report
# (a per-check count of failures) is written to var/schemathesis/ and
# summarized on stdout. Exit status: schemathesis's (non-zero when a check
# failed), 2 on a usage or setup error.
#
# Checks: every check schemathesis has but unsupported_method and
# allow_header_conformance (scripts/schemathesis.toml says why). Not fuzzed:
# /debug/pprof/* (profile and trace run for seconds). Two operations run in
# passes of their own after the main one: PUT /v1/templates/{role} (it
# changes which roles are break-glass, so other operations' valid data would
# change under them) and, last, DELETE /v1/tokens/{id} (it may revoke the
# token the run uses). scripts/schemathesis_hooks.py fills in
# what a JSON schema cannot say (times relative to now and to each other,
# opaque cursors, an Idempotency-Key per request). scripts/schemathesis.toml holds the
# rest of the configuration (ASCII data, oversize statuses, and the two
# operations whose valid data a schema cannot pin down).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="${KEYFLEET_SCHEMATHESIS_VENV:-$root/var/venv-schemathesis}"
# Pinned: checks and data generation change between releases.
pins=(schemathesis==4.32.5)
examples="${KEYFLEET_SCHEMATHESIS_EXAMPLES:-25}"
max_time="${KEYFLEET_SCHEMATHESIS_MAX_TIME:-300}"

url="${1:-}"
token="${2:-}"
if [ -z "$url" ] || [ -z "$token" ]; then
  echo "usage: $0 URL TOKEN [schemathesis run options]" >&2
  exit 2
fi
shift 2

log() { echo "schemathesis: $*" >&2; }

mkdir -p "$root/var"
[ -f "$root/var/go.mod" ] || printf 'module keyfleet.local/var\n' >"$root/var/go.mod"

stamp="$venv/.keyfleet-pins"
if [ ! -x "$venv/bin/schemathesis" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  command -v python3 >/dev/null 2>&1 || { log "python3 is required"; exit 2; }
  log "installing ${pins[*]} into $venv"
  python3 -m venv "$venv" || { log "python3 -m venv failed"; exit 2; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" || { log "pip install failed"; exit 2; }
  echo "${pins[*]}" >"$stamp"
fi

out="$root/var/schemathesis"
mkdir -p "$out"
# schemathesis keeps a cache of past failures (.schemathesis/) in its working
# directory and replays it: keep it under var/, out of the source tree.
cd "$out"

run() {
  local name=$1
  shift
  # The hooks file is found through SCHEMATHESIS_HOOKS (a module name).
  PYTHONPATH="$root/scripts" SCHEMATHESIS_HOOKS=schemathesis_hooks \
    "$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run "$url/v1/openapi.json" \
    -H "Authorization: Bearer $token" \
    --max-examples "$examples" --workers 1 \
    --phases examples,coverage,fuzzing --max-time "$max_time" \
    --generation-deterministic --seed 7 \
    --request-timeout 30 --suppress-health-check all \
    --report ndjson --report-dir "$out/$name" "$@"
}

status=0
run main --exclude-path-regex '^/debug/pprof' --exclude-operation-id putv1_templates_role \
  --exclude-operation-id deletev1_tokens_id "$@" || status=$?
run templates --include-operation-id putv1_templates_role "$@" || status=$?
run tokens --include-operation-id deletev1_tokens_id "$@" || status=$?
exit $status
