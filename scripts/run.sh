#!/usr/bin/env bash
# `make run`: keyfleet serve on the embedded Kafka-protocol broker against the
# project's local ClickHouse, fed by a simulated fleet: two days of history
# first, then live activity with the lock-gateway simulators answering
# revocations. Ctrl-C stops everything this script started.
#
# Every address is set here once, from the environment (the Makefile's
# variables pass them): HTTP_ADDR (serve's HTTP), KAFKA_ADDR (the embedded
# broker serve starts and the simulators write to), CLICKHOUSE_ADDR (the
# native port of the ClickHouse that scripts/clickhouse.sh started).
# Logging is quiet by default (warnings and errors, no access log) so the
# banner with the token stays in view; it is also written to
# var/run-banner.txt and printed again when the script stops.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="$root/bin/keyfleet"
http="${HTTP_ADDR:-127.0.0.1:8080}"
kafka="${KAFKA_ADDR:-127.0.0.1:9092}"
clickhouse="${CLICKHOUSE_ADDR:-127.0.0.1:${KEYFLEET_CH_TCP_PORT:-19000}}"
token="${KEYFLEET_BOOTSTRAP_TOKEN:-dev-admin-token-change-me-0123456789}"
rate="${KEYFLEET_RUN_RATE:-50}"
seed="${KEYFLEET_RUN_SEED:-7}"
log_level="${KEYFLEET_RUN_LOG_LEVEL:-warn}"
access_log="${KEYFLEET_RUN_ACCESS_LOG:-false}"
if [ "${#token}" -lt 32 ]; then
  echo "run: KEYFLEET_BOOTSTRAP_TOKEN must be at least 32 characters (keyfleet serve refuses shorter ones)" >&2
  exit 2
fi
export KEYFLEET_BOOTSTRAP_TOKEN="$token"
data="$root/var/keyfleet"
banner_file="$root/var/run-banner.txt"
mkdir -p "$data"
fleet=(--seed "$seed" --sites 4 --subjects 600)
# The simulated wallet provider (session-revocation webhook, phones that
# attest with a test CA) and the CA serve trusts.
wallet="${KEYFLEET_RUN_WALLET_ADDR:-127.0.0.1:8091}"
session_secret="${KEYFLEET_RUN_SESSION_SECRET:-keyfleet-dev-session-secret}"
attest="$data/attest"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -f "$banner_file" ]; then
    echo
    echo "keyfleet stopped. It was:"
    cat "$banner_file"
  fi
}
trap cleanup INT TERM EXIT

# The simulated estate's locks and credentials, so events resolve to sites,
# doors and (pseudonymous) subjects.
"$bin" simulate "${fleet[@]}" --registry-only --registry-out "$data/registry.json" \
  --identities-out "$data/identities.json" --people-out "$data/people.csv" --attest-ca "$attest" 2>/dev/null

"$bin" serve --http-addr "$http" --embedded-kafka-addr "$kafka" --clickhouse-addr "$clickhouse" \
  --registry "$data/registry.json" --log-level "$log_level" --access-log="$access_log" \
  --attest-android-roots "$attest/android-roots.pem" --attest-android-packages com.keyfleet.wallet \
  --attest-apple-roots "$attest/apple-roots.pem" --attest-apple-app-ids KEYFLEET01.com.keyfleet.wallet \
  --attest-webauthn-roots "$attest/webauthn-roots.pem" --attest-webauthn-rp-ids keyfleet.example \
  --attest-webauthn-origins https://keyfleet.example \
  --session-revoke-url "http://$wallet/v1/sessions/revoke" --session-revoke-secret "$session_secret" &
pids+=($!)

for _ in $(seq 1 120); do
  curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "keyfleet serve exited" >&2; exit 1; }
  sleep 0.5
done

# Who the pseudonymous subjects are, for admins' re-identification (audited).
curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  --data-binary @"$data/identities.json" "http://$http/v1/subjects/identities" >/dev/null

cat >"$banner_file" <<MSG

keyfleet is running (embedded Kafka on $kafka, ClickHouse on $clickhouse),
fed by a simulated estate (seed $seed): two days of history, then ~$rate events/s live.

  Dashboards   http://$http/            (log in with the token below)
  Health       http://$http/readyz
  API          http://$http/v1/openapi.json  (docs/api.md)
  Metrics      http://$http/metrics     (Authorization: Bearer <token>)
  Admin token  $token
  Wallet       http://$wallet   (simulated wallet provider: session webhook, phones attesting keys)

Try a revocation drill (termination, lost-device or breach):
  bin/keyfleet drill termination --token $token --subjects 20 --site site-01 --door-groups unit:01-101

Identity sync: the estate's people come from an HR feed (keyfleet identity import) and
staff turnover is pushed over SCIM (/scim/v2) every ~20 s: joiners get credentials,
movers' doors follow their role, leavers' keys are revoked on every lock
(leaver latency: GET /v1/kpis, keyfleet_identity_leaver_latency_seconds).

Logs: $log_level and up, access log $access_log (KEYFLEET_RUN_LOG_LEVEL, KEYFLEET_RUN_ACCESS_LOG).
This text is in var/run-banner.txt. Press Ctrl-C to stop.

MSG
cat "$banner_file"

if [ ! -f "$data/.backfilled-$seed" ]; then
  "$bin" simulate "${fleet[@]}" --kafka-brokers "$kafka" --days 2 --log-level warn && touch "$data/.backfilled-$seed"
fi
# Identity sync: an identity provider's token (role scim), the estate's people
# from the HR feed (the first run creates them, linked to their simulated
# credentials; later runs find nothing to change), then staff turnover over SCIM.
scim_token=$(curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"make-run-idp","role":"scim"}' "http://$http/v1/tokens" | sed -n 's/.*"secret":"\([^"]*\)".*/\1/p')
"$bin" identity import "$data/people.csv" --url "http://$http" --token "$scim_token" >"$data/identity-import.txt"
head -n 2 "$data/identity-import.txt"
"$bin" simulate turnover "${fleet[@]}" --scim-url "http://$http/scim/v2" --scim-token "$scim_token" --every 20s \
  --log-level warn >/dev/null &
pids+=($!)

"$bin" simulate "${fleet[@]}" --kafka-brokers "$kafka" --rate "$rate" --duration 8760h --gateways --log-level warn \
  --wallet-addr "$wallet" --wallet-secret "$session_secret" --attest-ca "$attest" &
pids+=($!)
wait "${pids[0]}"
