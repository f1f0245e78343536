# The README's two commands: `go run ./cmd/hookline demo` and `make test`.
GO ?= go
CLICKHOUSE := 127.0.0.1:9000
KAFKA := 127.0.0.1:19092
KAFKA_CLUSTER := 127.0.0.1:19192,127.0.0.1:19292,127.0.0.1:19392
POSTGRES := postgres://postgres@127.0.0.1:15432/postgres?sslmode=disable
# The failure tests write their figures here; `make test` prints them last.
REPORT := $(CURDIR)/.test-report
TEST_ENV := HOOKLINE_TEST_CLICKHOUSE=$(CLICKHOUSE) HOOKLINE_REQUIRE_CLICKHOUSE=1 HOOKLINE_TEST_REPORT=$(REPORT) \
	HOOKLINE_TEST_POSTGRES='$(POSTGRES)' HOOKLINE_REQUIRE_POSTGRES=1 \
	HOOKLINE_TEST_CHDB=$$(bash deploy/chdb/chdb.sh python) HOOKLINE_REQUIRE_CHDB=1 \
	HOOKLINE_TEST_PROMETHEUS=$$(bash deploy/prometheus/prometheus.sh path) HOOKLINE_REQUIRE_PROMETHEUS=1
KAFKA_ENV := HOOKLINE_TEST_BROKERS=$(KAFKA) HOOKLINE_REQUIRE_KAFKA=1
CLUSTER_ENV := HOOKLINE_TEST_CLUSTER=$(KAFKA_CLUSTER) HOOKLINE_REQUIRE_CLUSTER=1
# The tests that must each leave a line of figures in the report (a skipped
# one leaves none, and make test fails): the failure tests, and the check of
# the schema on a current ClickHouse engine.
FAILURE_TESTS := TestProcessorCrashLosesNothing TestCrashMidTransactionLeavesEachTierRecordOnce \
	TestRebalanceMidRunLosesNothingAndNeverEarly TestBrokerFailoverKeepsFlowing TestHostileReceiversStayLocal \
	TestSinkSurvivesClickHouseOutage TestEmbeddedBrokerKilledRepeatedlyKeepsTheChainExactlyOnce \
	TestServeKilledMidRunLosesNothing TestOutboxRelayKilledRepeatedlyLosesAndRepeatsNothing \
	TestOutboxStandbyRelayTakesOverWhenTheActiveDies TestModernEngineMatches1816 \
	TestStrictHeldKeysWaitInKafkaNotInMemory

# Each fuzz target runs a count of inputs, about 10 s of CI's 2 cores, not a
# duration: Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when a -fuzztime duration ends while a worker is mid-input
# (golang/go#75804, fixed in Go 1.27; CI run 3 hit it in FuzzAdminAPI, with no
# crasher). FUZZTIME (a count such as 1000000x, or a duration when hunting)
# overrides every target's count.
FUZZTIME ?=
fuzzfor = $(or $(FUZZTIME),$(1))

.PHONY: rules test test-embedded test-kafka test-cluster report fuzz services chaos build demo vet lint

## test: vet and lint, install and start ClickHouse, PostgreSQL and a real
## Kafka, check and test the alert rules, then run every test with the race
## detector: all packages on the embedded broker, the end-to-end and failure suite again
## on Apache Kafka, the broker failover test on a three-node cluster, each
## fuzz target for its count of inputs; then print the failure tests' figures.
test: vet lint services
	@rm -f $(REPORT)
	$(MAKE) --no-print-directory rules test-embedded test-kafka test-cluster fuzz report

# -p 1: one package at a time, so the packages' race-enabled test binaries
# do not compete for the 2 cores CI has.
test-embedded:
	$(TEST_ENV) $(GO) test -race -shuffle=on -p 1 -timeout 45m ./...

test-kafka:
	$(TEST_ENV) $(KAFKA_ENV) $(GO) test -race -shuffle=on -timeout 45m ./test/

# The three-node cluster runs only for the failover test.
test-cluster:
	bash deploy/kafka/kafka.sh start --nodes 3
	$(TEST_ENV) $(KAFKA_ENV) $(CLUSTER_ENV) $(GO) test -race -count=1 -timeout 20m -run '^TestBrokerFailoverKeepsFlowing$$' ./test/; \
		rc=$$?; bash deploy/kafka/kafka.sh stop --nodes 3; exit $$rc

## report: the failure tests' figures; fails if one of them left none
report:
	@echo "== failure tests: figures =="
	@cat $(REPORT)
	@for t in $(FAILURE_TESTS); do grep -q "^$$t" $(REPORT) || { echo "make test: $$t reported no figures (skipped?)"; exit 1; }; done

## rules: promtool checks the alert rules and runs their unit tests
## (deploy/prometheus/alerts_test.yml)
rules:
	promtool=$$(bash deploy/prometheus/prometheus.sh install) && \
		$$promtool check rules deploy/prometheus/alerts.yml && \
		cd deploy/prometheus && $$promtool test rules alerts_test.yml

## fuzz: each fuzz target for its count of inputs (about 10 s; FUZZTIME=60s or more when hunting);
## a crasher fails the run and is kept in testdata/fuzz as a seed
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzIngestJSON$$' -fuzztime=$(call fuzzfor,15000x) ./internal/ingest/
	$(GO) test -run='^$$' -fuzz='^FuzzAdminAPI$$' -fuzztime=$(call fuzzfor,15000x) ./internal/ingest/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(call fuzzfor,300000x) ./envelope/
	$(GO) test -run='^$$' -fuzz='^FuzzParseRetryState$$' -fuzztime=$(call fuzzfor,100000x) ./internal/processors/
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(call fuzzfor,200000x) ./signature/

## services: ClickHouse and PostgreSQL (Debian's packages, via apt-get), a
## single-node Apache Kafka 4 (Maven Central jars, Java 17), on loopback; and
## the in-process ClickHouse 26.9 engine (PyPI's chdb-core, pinned, in a venv);
## Debian's Prometheus and promtool (installed, not started: tests start their own)
services:
	bash deploy/clickhouse/clickhouse.sh start
	bash deploy/prometheus/prometheus.sh install
	bash deploy/chdb/chdb.sh install
	bash deploy/postgres/postgres.sh start
	bash deploy/kafka/kafka.sh start

## chaos: the failure tests at their long sizes (HOOKLINE_CHAOS=long: 20,000
## events through 5 crashes, the embedded broker killed 40 times, ...)
chaos: services
	bash deploy/kafka/kafka.sh start --nodes 3
	HOOKLINE_CHAOS=long $(TEST_ENV) $(KAFKA_ENV) $(CLUSTER_ENV) \
		$(GO) test -race -count=1 -v -timeout 60m -run 'Crash|Rebalance|Failover|Hostile' ./test/
	HOOKLINE_CHAOS=long $(GO) test -race -count=1 -v -timeout 20m -run 'EmbeddedBrokerKilled' ./test/

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## lint: golangci-lint with .golangci.yml; the pinned version is installed on
## first use by deploy/lint/golangci-lint.sh (built with go install, outside
## hookline's go.mod)
lint:
	lint=$$(GO=$(GO) bash deploy/lint/golangci-lint.sh) && $$lint run ./...

build:
	$(GO) build -o hookline ./cmd/hookline

demo:
	$(GO) run ./cmd/hookline demo
