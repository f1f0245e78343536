package app

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// goroutine of a serve belongs to its run group, and Run returns only once
// all have returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
