#!/usr/bin/env bash
# Run the scim2-tester conformance checks (RFC 7643/7644) against a live SCIM
# service provider.
#
#   scripts/scim-check.sh URL [TOKEN]
#   SCIM_URL=http://127.0.0.1:8080/scim/v2 SCIM_TOKEN=... scripts/scim-check.sh
#
# URL is the service provider's base (…/scim/v2); TOKEN a bearer token of
# role scim. The first run makes a virtualenv under var/venv-scim (override
# with KEYFLEET_SCIM_VENV) and pip-installs the pinned tester from PyPI.
# Every check is printed with its status; the script exits 1 when any check
# ends in ERROR or CRITICAL, 2 on a usage or setup error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="${KEYFLEET_SCIM_VENV:-$root/var/venv-scim}"
# Pinned: the checks (and what they demand) change between releases.
pins=(scim2-tester==0.5.2 scim2-client==0.13.2 scim2-models==0.12.3 httpx2==2.16.2)

url="${1:-${SCIM_URL:-}}"
token="${2:-${SCIM_TOKEN:-}}"
if [ -z "$url" ]; then
  echo "usage: $0 URL [TOKEN]   (or SCIM_URL / SCIM_TOKEN)" >&2
  exit 2
fi

log() { echo "scim-check: $*" >&2; }

# A go.mod makes ./var a module of its own, so `go test ./...` and `go vet
# ./...` never walk into the virtualenv.
mkdir -p "$root/var"
[ -f "$root/var/go.mod" ] || printf 'module keyfleet.local/var\n' >"$root/var/go.mod"

stamp="$venv/.keyfleet-pins"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  command -v python3 >/dev/null 2>&1 || { log "python3 is required"; exit 2; }
  log "installing ${pins[*]} into $venv"
  python3 -m venv "$venv" || { log "python3 -m venv failed"; exit 2; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" || { log "pip install failed"; exit 2; }
  echo "${pins[*]}" >"$stamp"
fi

SCIM_URL="$url" SCIM_TOKEN="$token" exec "$venv/bin/python" - <<'PY'
import os
import sys
from collections import Counter

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Mutability, Required
from scim2_tester import Status, check_server
import scim2_tester.checkers.patch_add
import scim2_tester.checkers.patch_replace
import scim2_tester.filling

# scim2-tester 0.5.2 fills a dateTime attribute with a UUID string (filling.py
# has no datetime branch), which its own pydantic models then refuse, so any
# server publishing a writable dateTime (keyfleet's access extension end_date)
# fails every User check before a request is sent. Supply RFC 3339 date-times
# instead; the checks themselves are unchanged.
import datetime
import random

_generate = scim2_tester.filling.generate_random_value


def _generate_with_datetimes(context, path, mutability=None, required=None):
    binding = path.resolve()
    if (
        binding is not None
        and binding.target_type is datetime.datetime
        and (mutability is None or binding.get_annotation(Mutability) in mutability)
        and (required is None or binding.get_annotation(Required) in required)
    ):
        value = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            seconds=random.randint(0, 10 * 365 * 86400)
        )
        return [value] if binding.target_is_multivalued else value
    return _generate(context, path, mutability, required)


for module in (scim2_tester.filling, scim2_tester.checkers.patch_add, scim2_tester.checkers.patch_replace):
    module.generate_random_value = _generate_with_datetimes

headers = {"Authorization": "Bearer " + os.environ["SCIM_TOKEN"]} if os.environ.get("SCIM_TOKEN") else {}
http = httpx2.Client(base_url=os.environ["SCIM_URL"], headers=headers, timeout=30)
results = check_server(SyncSCIMClient(http))

counts = Counter()
for r in results:
    counts[r.status.name] += 1
    where = f" [{r.resource_type}]" if r.resource_type else ""
    reason = (r.reason or "").replace("\n", " | ")
    print(f"{r.status.name:<10} {r.title}{where}: {reason}")

failed = counts["ERROR"] + counts["CRITICAL"]
summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
print(f"scim2-tester: {len(results)} checks: {summary}")
if not results:
    print("scim2-tester ran no check", file=sys.stderr)
    sys.exit(1)
sys.exit(1 if failed else 0)
PY
