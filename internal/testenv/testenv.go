// Package testenv gives tests the real services that `make test` starts,
// from the environment: a missing one skips the test, unless the
// environment says it is required (CI), and then fails it.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// service is one real service a test can ask for.
type service struct {
	env, require string // HOOKLINE_TEST_<X>, HOOKLINE_REQUIRE_<X>
	how          string // how to get it
}

// get returns the service's setting; without one it skips the test, or
// fails it when the service is required.
func (s service) get(t testing.TB) string {
	t.Helper()
	v := os.Getenv(s.env)
	if v == "" {
		if os.Getenv(s.require) != "" {
			t.Fatalf("%s is set but %s is empty: %s", s.require, s.env, s.how)
		}
		t.Skipf("%s is not set: %s", s.env, s.how)
	}
	return v
}

// Postgres is the DSN of HOOKLINE_TEST_POSTGRES (deploy/postgres/postgres.sh
// start prints it).
func Postgres(t testing.TB) string {
	t.Helper()
	return service{"HOOKLINE_TEST_POSTGRES", "HOOKLINE_REQUIRE_POSTGRES", "start it with deploy/postgres/postgres.sh start"}.get(t)
}

// ClickHouse is the address of the ClickHouse 18.16 server of
// HOOKLINE_TEST_CLICKHOUSE (deploy/clickhouse/clickhouse.sh start).
func ClickHouse(t testing.TB) string {
	t.Helper()
	return service{"HOOKLINE_TEST_CLICKHOUSE", "HOOKLINE_REQUIRE_CLICKHOUSE", "start it with deploy/clickhouse/clickhouse.sh start"}.get(t)
}

// CHDB is the Python interpreter with chdb-core installed, of
// HOOKLINE_TEST_CHDB (deploy/chdb/chdb.sh python prints it).
func CHDB(t testing.TB) string {
	t.Helper()
	return service{"HOOKLINE_TEST_CHDB", "HOOKLINE_REQUIRE_CHDB", "HOOKLINE_TEST_CHDB=$(bash deploy/chdb/chdb.sh python) runs the modern-engine tests"}.get(t)
}

// Prometheus is the Prometheus server binary of HOOKLINE_TEST_PROMETHEUS
// (deploy/prometheus/prometheus.sh path prints it).
func Prometheus(t testing.TB) string {
	t.Helper()
	return service{"HOOKLINE_TEST_PROMETHEUS", "HOOKLINE_REQUIRE_PROMETHEUS", "install it with deploy/prometheus/prometheus.sh install"}.get(t)
}

// Cluster is the three-node Kafka cluster of HOOKLINE_TEST_CLUSTER
// (deploy/kafka/kafka.sh start --nodes 3 prints it).
func Cluster(t testing.TB) []string {
	t.Helper()
	return strings.Split(service{"HOOKLINE_TEST_CLUSTER", "HOOKLINE_REQUIRE_CLUSTER",
		"start it with deploy/kafka/kafka.sh start --nodes 3, then HOOKLINE_TEST_CLUSTER=127.0.0.1:19192,127.0.0.1:19292,127.0.0.1:19392"}.get(t), ",")
}
