"""schemathesis hooks for keyfleet (loaded by scripts/schemathesis.sh).

They fill in what a JSON schema cannot say, in generated data that is meant
to be valid (positive mode) only; negative data (meant to be refused) is
never touched:

- times relative to now and to each other: a range's from must be before its
  to and at most 400 days earlier, a credential's valid_until_ms must lie in
  the future, a weekly report's week must have started;
- a cursor is opaque: only a next_cursor the API returned is one, so a
  generated cursor is dropped;
- an Idempotency-Key replays its first request: reused with another body it is
  rightly refused (422), so each request gets a key of its own;
- a device goes with attestation evidence (device_id is required with
  attestation), and activation needs one: without one in the body the
  credential's own is used, and a credential issued without a device then
  needs device_id;
- an identity import names each subject once;
- a pending-lock SLA is a positive duration;
- a break-glass role template needs approval two;
- a token's expires_at lies in the future, at most five years ahead;
- a % in a path value is sent escaped (schemathesis sends it raw).
"""

import datetime as dt
import re
import time
import uuid

import schemathesis

DAY_MS = 86_400_000
MAX_RANGE_MS = 400 * DAY_MS
_UNITS = {"ns": 1e-6, "us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4, "h": 3.6e6, "d": DAY_MS}


def _now_ms():
    return int(time.time() * 1000)


def _parse(value, now):
    """A query time as keyfleet reads it, in epoch ms (None if unreadable)."""
    if not isinstance(value, str):
        return None
    if value == "now":
        return now
    m = re.fullmatch(r"now-([0-9.]+)(ns|us|ms|s|m|h|d)", value)
    if m:
        return now - int(float(m.group(1)) * _UNITS[m.group(2)])
    if re.fullmatch(r"[0-9]{1,15}", value):
        return int(value)
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            d = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        else:
            d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return int(d.timestamp() * 1000)
    except ValueError:
        return None


def _fix_range(query):
    """Keep a generated [from, to) the API can answer: from before to, at most 400 days."""
    if not isinstance(query, dict) or ("from" not in query and "to" not in query):
        return
    now = _now_ms()
    frm = _parse(query.get("from", "now-1d"), now)
    to = _parse(query.get("to", "now"), now)
    if frm is None or to is None or not 0 < frm < to or to - frm > MAX_RANGE_MS:
        if "from" in query:
            query["from"] = "now-1d"
        if "to" in query:
            query["to"] = "now"


def _future(body):
    if not isinstance(body, dict):
        return
    until = body.get("valid_until_ms")
    if isinstance(until, int) and until != 0:
        start = max(_now_ms(), body.get("valid_from_ms") or 0)
        if until <= start:
            body["valid_until_ms"] = start + DAY_MS


@schemathesis.hook
def before_call(context, case, **kwargs):
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return
    method, path = case.operation.method.upper(), case.operation.path
    # schemathesis puts a generated path value's % into the URL as it is, so
    # "ab%C2%9B" reaches keyfleet as a control character: escape it.
    if case.path_parameters:
        for k, v in list(case.path_parameters.items()):
            if isinstance(v, str) and "%" in v:
                case.path_parameters[k] = v.replace("%", "%25")
    if case.query:
        case.query.pop("cursor", None)
        _fix_range(case.query)
        week = case.query.get("week")
        if path == "/v1/reports/weekly" and isinstance(week, str) and week > time.strftime("%G-W%V", time.gmtime()):
            case.query["week"] = "2026-W01"
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = "schemathesis-" + uuid.uuid4().hex
    if case.query and isinstance(case.query.get("sla"), str) and not re.search(r"[1-9]", case.query["sla"]):
        case.query["sla"] = "15m"
    if method == "POST" and (path.startswith("/v1/credentials") or path == "/v1/breakglass"):
        for item in case.body if isinstance(case.body, list) else [case.body]:
            _future(item)
            if isinstance(item, dict) and item.get("attestation") and not item.get("device_id"):
                item["device_id"] = "schemathesis-device"
    if method == "POST" and path.endswith(":activate") and isinstance(case.body, dict) and not case.body.get("device_id"):
        case.body["device_id"] = "schemathesis-device"
    if method == "POST" and path == "/v1/tokens" and isinstance(case.body, dict) and case.body.get("expires_at"):
        case.body["expires_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    if method == "PUT" and path == "/v1/templates/{role}" and isinstance(case.body, dict) and case.body.get("break_glass"):
        case.body["approval"] = "two"
    if method == "POST" and path == "/v1/subjects/identities" and isinstance(case.body, list):
        seen = set()
        for i, item in enumerate(case.body):
            if isinstance(item, dict) and item.get("subject_id") in seen:
                item["subject_id"] = "%s-%d" % (item["subject_id"], i)
            if isinstance(item, dict):
                seen.add(item.get("subject_id"))
