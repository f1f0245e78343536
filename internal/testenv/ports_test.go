package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestFreePortIsBelowTheEphemeralRangeAndNeverTwice(t *testing.T) {
	hi := min(portHigh, ephemeralLow())
	seen := make(map[int]bool)
	for range 200 {
		port := FreePort(t)
		if port < portLow || port >= hi {
			t.Fatalf("port %d is outside [%d, %d)", port, portLow, hi)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
}

func TestFreePortSkipsAPortAnotherProcessHolds(t *testing.T) {
	port := FreePort(t)
	// A second open file of the same lock is what another test process
	// would hold: flock refuses it while this process keeps its own.
	dir := filepath.Join(os.TempDir(), "hookline-test-ports")
	if f, ok := lockPort(filepath.Join(dir, strconv.Itoa(port))); ok {
		_ = f.Close()
		t.Fatalf("the lock of port %d was taken twice", port)
	}
}
