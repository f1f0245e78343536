package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports for child processes. A test that starts `hookline serve`, Kafka
// or ClickHouse as a child must name the port before the child binds it.
// A port the kernel handed out for 127.0.0.1:0 and that the test closed
// again is back in the ephemeral range, and any outgoing connection of the
// machine (a serve process dialling its broker, say) may take it as its
// local port before the child binds: CI saw serve stop with "bind: address
// already in use" that way. So the ports come from below the ephemeral
// range, which the kernel never hands out on its own, and each one is
// reserved across every test process of the machine by a lock file held
// until the process exits.
const (
	portLow  = 20000 // the range handed out: [portLow, min(portHigh, ephemeral low))
	portHigh = 29000 // below 29092, where a second Kafka of deploy/kafka/kafka.sh listens
)

var (
	portMu    sync.Mutex
	portTaken = make(map[int]bool)
	portLocks []*os.File // held open, and so locked, until the process exits
)

// FreeAddr returns 127.0.0.1:PORT for a child process to listen on: a port
// that no other caller of this machine holds and that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func reservePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	hi := min(portHigh, ephemeralLow())
	if hi-portLow < 1000 {
		return 0, fmt.Errorf("testenv: the ephemeral port range starts at %d, leaving too few ports below it for tests", hi)
	}
	dir := filepath.Join(os.TempDir(), "hookline-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("testenv: port locks: %w", err)
	}
	_ = os.Chmod(dir, 0o1777) // every user's tests share the ports, like /tmp
	n := hi - portLow
	start := rand.IntN(n)
	for i := range n {
		port := portLow + (start+i)%n
		if portTaken[port] {
			continue
		}
		lock, ok := lockPort(filepath.Join(dir, strconv.Itoa(port)))
		if !ok {
			continue // another test process holds it
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			_ = lock.Close() // something outside the tests listens there
			continue
		}
		_ = ln.Close()
		portTaken[port] = true
		portLocks = append(portLocks, lock)
		return port, nil
	}
	return 0, fmt.Errorf("testenv: no free port in [%d, %d)", portLow, hi)
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768 // Linux's default; other systems start higher
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return low
}
