// Package testenv gives tests the real services that `make test` starts,
// from the environment: a missing one skips the test, unless the
// environment says it is required (CI), and then fails it.
package testenv

import (
	"os"
	"testing"
)

// Postgres is the DSN of HOOKLINE_TEST_POSTGRES (deploy/postgres/postgres.sh
// start prints it); with HOOKLINE_REQUIRE_POSTGRES set, a missing one fails
// the test instead of skipping it.
func Postgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("HOOKLINE_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("HOOKLINE_REQUIRE_POSTGRES") != "" {
			t.Fatal("HOOKLINE_REQUIRE_POSTGRES is set but HOOKLINE_TEST_POSTGRES is empty: start it with deploy/postgres/postgres.sh start")
		}
		t.Skip("HOOKLINE_TEST_POSTGRES is not set (deploy/postgres/postgres.sh start)")
	}
	return dsn
}
