# The README's two commands: `go run ./cmd/hookline demo` and `make test`.
GO ?= go
CLICKHOUSE := 127.0.0.1:9000
KAFKA := 127.0.0.1:19092
KAFKA_CLUSTER := 127.0.0.1:19192,127.0.0.1:19292,127.0.0.1:19392
TEST_ENV := HOOKLINE_TEST_CLICKHOUSE=$(CLICKHOUSE) HOOKLINE_REQUIRE_CLICKHOUSE=1

FUZZTIME ?= 10s

.PHONY: test test-embedded test-kafka fuzz services chaos build demo vet

## test: install and start ClickHouse and a real Kafka, then run every test
## with the race detector: all packages on the embedded broker, then the
## end-to-end suite again on Apache Kafka.
test: vet services test-embedded test-kafka fuzz

# -p 1: one package at a time. On a 2-core machine the packages' race-enabled
# test binaries running side by side skew test/'s slow-endpoint comparison
# (ratio 1.43 seen in CI, 1.02-1.05 when test/ runs alone).
test-embedded:
	$(TEST_ENV) $(GO) test -race -shuffle=on -p 1 -timeout 45m ./...

test-kafka:
	$(TEST_ENV) HOOKLINE_TEST_BROKERS=$(KAFKA) HOOKLINE_REQUIRE_KAFKA=1 $(GO) test -race -shuffle=on -timeout 45m ./test/

## fuzz: each fuzz target for FUZZTIME (10s; 60s or more when hunting);
## a crasher fails the run and is kept in testdata/fuzz as a seed
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzIngestJSON$$' -fuzztime=$(FUZZTIME) ./ingest/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./envelope/
	$(GO) test -run='^$$' -fuzz='^FuzzParseRetryState$$' -fuzztime=$(FUZZTIME) ./processors/
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./signature/

## services: ClickHouse (Debian's package, via apt-get) and a single-node
## Apache Kafka 4 (Maven Central jars, Java 17) on loopback
services:
	bash deploy/clickhouse/clickhouse.sh start
	bash deploy/kafka/kafka.sh start

## chaos: the long failure tests (processor crashes, broker failover on a
## three-node cluster, rebalance, hostile receivers; then serve with its
## embedded broker SIGKILLed 40 times), about 30 minutes
chaos:
	bash deploy/kafka/kafka.sh start
	bash deploy/kafka/kafka.sh start --nodes 3
	HOOKLINE_CHAOS=1 HOOKLINE_REQUIRE_KAFKA=1 HOOKLINE_TEST_BROKERS=$(KAFKA) HOOKLINE_TEST_CLUSTER=$(KAFKA_CLUSTER) \
		$(GO) test -race -count=1 -v -timeout 60m -run 'Crash|Rebalance|Failover|Hostile' ./test/
	HOOKLINE_CHAOS=1 $(GO) test -race -count=1 -v -timeout 20m -run 'EmbeddedBrokerKilled' ./test/

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

build:
	$(GO) build -o hookline ./cmd/hookline

demo:
	$(GO) run ./cmd/hookline demo
