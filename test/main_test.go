package test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain turns on allow_private_destinations for every `hookline serve`
// these tests start as a subprocess (they inherit the environment): their
// receivers listen on 127.0.0.1, which the SSRF guard refuses by default.
// In-process services get it from testConfig. It also fails the tests if a
// goroutine outlives them: Service.Run returns only once every goroutine
// it started has returned.
func TestMain(m *testing.M) {
	if err := os.Setenv("HOOKLINE_ALLOW_PRIVATE_DESTINATIONS", "true"); err != nil {
		fmt.Fprintln(os.Stderr, "set HOOKLINE_ALLOW_PRIVATE_DESTINATIONS:", err)
		os.Exit(2)
	}
	goleak.VerifyTestMain(m)
}
