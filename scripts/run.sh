#!/usr/bin/env bash
# `make run`: keyfleet serve on the embedded Kafka-protocol broker against the
# project's local ClickHouse, with a simulated fleet feeding it. Ctrl-C stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
http="${HTTP_ADDR:-127.0.0.1:8080}"
token="${KEYFLEET_BOOTSTRAP_TOKEN:-dev-admin-token}"
export KEYFLEET_BOOTSTRAP_TOKEN="$token"

cat <<MSG
keyfleet is starting (embedded Kafka on 127.0.0.1:9092, ClickHouse on 127.0.0.1:19000).

  Dashboards   http://$http/            (log in with the token below)
  Health       http://$http/readyz
  Metrics      http://$http/metrics     (Authorization: Bearer <token>)
  Admin token  $token

Press Ctrl-C to stop.
MSG
exec "$root/bin/keyfleet" serve --http-addr "$http"
