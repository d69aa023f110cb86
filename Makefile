# keyfleet — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/keyfleet
# `make run`'s addresses, set here once: serve's HTTP, the embedded Kafka
# broker (serve starts it, the simulators write to it) and the local
# ClickHouse's native and HTTP ports (scripts/clickhouse.sh starts it there).
# make run HTTP_ADDR=127.0.0.1:8081 KAFKA_ADDR=127.0.0.1:9093 moves them.
HTTP_ADDR ?= 127.0.0.1:8080
KAFKA_ADDR ?= 127.0.0.1:9092
CLICKHOUSE_PORT ?= 19000
CLICKHOUSE_HTTP_PORT ?= 18123
# The dev admin token `make run` creates (override for anything shared; at least
# 32 characters, serve refuses shorter ones).
KEYFLEET_BOOTSTRAP_TOKEN ?= dev-admin-token-change-me-0123456789

export KEYFLEET_TEST_CLICKHOUSE_ADDR ?= 127.0.0.1:19000
export KEYFLEET_TEST_KAFKA_BROKERS ?= 127.0.0.1:19092
# The two-node ClickHouse cluster (scripts/clickhouse-cluster.sh: ZooKeeper and
# two 18.16 nodes, cluster keyfleet = 1 shard x 2 replicas) the cluster tests use.
export KEYFLEET_TEST_CLICKHOUSE_CLUSTER_ADDRS ?= 127.0.0.1:19101,127.0.0.1:19102
export KEYFLEET_TEST_CLICKHOUSE_CLUSTER ?= keyfleet

.PHONY: build run test test-unit services services-stop cluster bench lint clean dashboards chromium chdb schemathesis

build:
	$(GO) build -o $(BIN) ./cmd/keyfleet

services:
	scripts/clickhouse.sh start
	scripts/kafka.sh start

services-stop:
	-scripts/clickhouse-cluster.sh stop
	-scripts/kafka.sh stop
	-scripts/clickhouse.sh stop

# The two-node ClickHouse cluster with ZooKeeper (docs/deploy.md), for the
# cluster tests; `make services-stop` stops it too.
cluster:
	scripts/clickhouse-cluster.sh start

# The main job on the embedded default: in-process Kafka-protocol broker,
# local ClickHouse (started by the project's script), dashboards on HTTP_ADDR.
run: build
	KEYFLEET_CH_TCP_PORT=$(CLICKHOUSE_PORT) KEYFLEET_CH_HTTP_PORT=$(CLICKHOUSE_HTTP_PORT) scripts/clickhouse.sh start
	HTTP_ADDR=$(HTTP_ADDR) KAFKA_ADDR=$(KAFKA_ADDR) CLICKHOUSE_ADDR=127.0.0.1:$(CLICKHOUSE_PORT) \
	  KEYFLEET_BOOTSTRAP_TOKEN='$(KEYFLEET_BOOTSTRAP_TOKEN)' scripts/run.sh

# The whole suite against real services (ClickHouse, the two-node ClickHouse
# cluster and a real Kafka broker), which this target starts itself, headless Chromium for the browser tests,
# and chDB (current ClickHouse, in-process) for the SQL checker
# (internal/chstorage: every migration and statement on 18.16 and on 26.x).
test: build services cluster chromium chdb
	KEYFLEET_TEST_REQUIRE=1 $(GO) test -count=1 -timeout 30m ./...

# Fuzz the API against its OpenAPI document (schemathesis from PyPI, ~8 min).
schemathesis: build services
	KEYFLEET_TEST_REQUIRE=1 KEYFLEET_SCHEMATHESIS=1 $(GO) test -count=1 -timeout 30m -run TestSchemathesis -v ./service/

# chDB (PyPI chdb-core, ClickHouse 26.x in-process) in var/venv-chdb;
# installed once, then a no-op.
chdb:
	scripts/chdb.sh >/dev/null

# Headless Chromium (Debian's package) for the dashboards' browser tests.
chromium:
	scripts/chromium.sh >/dev/null

# Re-vendor the dashboards' chart library (uPlot) from npm into the embedded
# assets; commit the result (go build itself never needs npm).
dashboards:
	scripts/dashboards.sh

# Fast tests only: no real services needed (service tests skip).
test-unit:
	$(GO) test -count=1 -short ./...

# Benchmarks (see BENCHMARKS.md): the Go micro-benchmarks beside the hot code,
# benchstat-friendly (BENCH_COUNT runs of each; compare two runs' BENCH_MICRO
# files with `benchstat old.txt new.txt`), then the end-to-end harness:
# `keyfleet bench` runs serve as a separate process on the real services and
# writes BENCH_OUT (with the baseline loop interleaved: keyfleet/baseline
# ratios), then the scaling benchmark (BENCH_FLEET_SIZES, BENCH_STORE_SIZES:
# serve's memory by fleet size, query latency by stored events) into
# BENCH_SCALE_OUT. BENCH_ARGS=--quick for a ~2 minute smoke run; BENCH_MICRO=
# (empty) skips the micro-benchmarks, BENCH_E2E= (empty) the harness,
# BENCH_SCALE= (empty) the scaling benchmark.
BENCH_COUNT ?= 5
BENCH_MICRO ?= var/bench/micro.txt
BENCH_E2E ?= 1
BENCH_OUT ?= var/bench/results.json
BENCH_ARGS ?=
BENCH_SCALE ?= 1
BENCH_FLEET_SIZES ?= 2k,20k,100k
BENCH_STORE_SIZES ?= 10M,30M
BENCH_SCALE_OUT ?= var/bench/scaling.json
bench: build services
	@mkdir -p var/bench $(dir $(BENCH_OUT))
	$(if $(BENCH_MICRO),set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./normalize/... ./detect/... ./internal/... ./pipeline/... | tee $(BENCH_MICRO))
	$(if $(BENCH_E2E),$(BIN) bench --out $(BENCH_OUT) $(BENCH_ARGS))
	$(if $(BENCH_SCALE),$(BIN) bench --fleet-sizes $(BENCH_FLEET_SIZES) --store-sizes $(BENCH_STORE_SIZES) --timeout 3h --out $(BENCH_SCALE_OUT))

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin var/keyfleet
