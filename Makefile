# The README's two commands: `go run ./cmd/hookline demo` and `make test`.
GO ?= go
CLICKHOUSE := 127.0.0.1:9000
TEST_ENV := HOOKLINE_TEST_CLICKHOUSE=$(CLICKHOUSE) HOOKLINE_REQUIRE_CLICKHOUSE=1

.PHONY: test services build demo vet

## test: install and start what the tests need, then run every test with the race detector
test: services vet
	$(TEST_ENV) $(GO) test -race -shuffle=on -timeout 45m ./...

## services: install (apt-get) and start ClickHouse on loopback
services:
	bash deploy/clickhouse/clickhouse.sh start

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

build:
	$(GO) build -o hookline ./cmd/hookline

demo:
	$(GO) run ./cmd/hookline demo
