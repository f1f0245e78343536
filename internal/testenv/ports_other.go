//go:build !unix

package testenv

import "os"

// lockPort opens the lock file of a port. Without flock the reservation
// holds only within this process.
func lockPort(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false
	}
	return f, true
}
