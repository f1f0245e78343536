package pipeline

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: a
// runner's loop and its workers stop when Run returns, and the test
// clusters close with their tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
