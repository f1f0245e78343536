// Package testreport collects the figures of the failure tests (sent,
// delivered, dead-lettered, lost, duplicates) so that a test run can show
// them although go test hides the logs of passing tests: each line also
// goes to the file named by HOOKLINE_TEST_REPORT, which `make test` prints
// at its end.
package testreport

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// EnvFile names the environment variable that holds the report file.
const EnvFile = "HOOKLINE_TEST_REPORT"

var mu sync.Mutex

// Figures logs a line of figures for t and appends it, prefixed with the
// test's name, to the report file, if one is set.
func Figures(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	path := os.Getenv(EnvFile)
	if path == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("test report: %v", err)
		return
	}
	_, err = fmt.Fprintf(f, "%s: %s\n", t.Name(), line)
	// Close reports a write the file system lost: without this, make test
	// would fail for a test without figures and not say why.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Errorf("test report: %v", err)
	}
}
