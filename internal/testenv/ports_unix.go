//go:build unix

package testenv

import (
	"os"
	"syscall"
)

// lockPort takes the lock file of a port without waiting. The lock lasts
// while the file stays open: the kernel drops it when the process exits,
// killed or not, so a crashed test run leaves no port behind.
func lockPort(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	return f, true
}
