package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// serveLimited serves h on a loopback port with limits and returns its
// address.
func serveLimited(t *testing.T, h http.Handler, limits ServerLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := limits.Server(h)
	go func() { _ = srv.Serve(limits.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// closedWithin reads conn until the server closes it, or fails once the
// deadline passes with the connection still open. It returns what was read.
func closedWithin(t *testing.T, conn net.Conn, deadline time.Duration) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(deadline)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection is still open after %v; read %q", deadline, got)
	}
	return string(got)
}

// A client that sends its body slowly, or not at all, is cut off at the
// read timeout, with and without a token; without one the 401 comes at
// once instead of after reading the rest of the body.
func TestSlowBodyIsCutOff(t *testing.T) {
	e := newEnv(t)
	open := e.server(t, nil).Handler()
	guarded := e.server(t, func(c *Config) { c.Tokens = []Token{token("p", "tok", nil, ScopeIngest)} }).Handler()
	limits := ServerLimits{ReadTimeout: 300 * time.Millisecond, WriteTimeout: time.Second}

	for _, tt := range []struct {
		name    string
		h       http.Handler
		auth    string
		answers string // status line expected before the close; "" for any
	}{
		{"no tokens configured", open, "", ""},
		{"valid token", guarded, "Authorization: Bearer tok\r\n", ""},
		{"no token", guarded, "", "HTTP/1.1 401"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveLimited(t, tt.h, limits)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			// 100 bytes announced, one sent, the rest never comes.
			fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: 100\r\n\r\n{", addr, tt.auth)
			got := closedWithin(t, conn, 10*time.Second)
			if tt.answers != "" && !strings.HasPrefix(got, tt.answers) {
				t.Fatalf("answer %q, want %s", got, tt.answers)
			}
			if strings.HasPrefix(got, "HTTP/1.1 202") {
				t.Fatalf("an incomplete body was accepted: %q", got)
			}
		})
	}
}

// An idle keep-alive connection is closed after the idle timeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	addr := serveLimited(t, h, ServerLimits{IdleTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	closedWithin(t, conn, 10*time.Second)
}

// At most MaxConnections are served at once; the next is served as soon as
// one of them closes.
func TestMaxConnections(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	addr := serveLimited(t, h, ServerLimits{MaxConnections: 2})
	get := func(conn net.Conn, wait time.Duration) error {
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			_ = res.Body.Close()
		}
		return err
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if err := get(c, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	third, err := net.Dial("tcp", addr) // the kernel's backlog takes it
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = third.Close() }()
	if err := get(third, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection was served while two were open (err %v)", err)
	}
	_ = held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("the third connection was not served after one closed: %v", err)
	}
	_ = res.Body.Close()
}

// A refused request is answered without waiting for the body the client
// has announced but not sent: net/http would otherwise try to drain it
// first, until the read timeout.
func TestRefusalDoesNotWaitForBody(t *testing.T) {
	e := newEnv(t)
	guarded := e.server(t, func(c *Config) { c.Tokens = []Token{token("p", "tok", nil, ScopeIngest)} }).Handler()
	addr := serveLimited(t, guarded, ServerLimits{ReadTimeout: time.Minute})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", addr)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body is outstanding: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
}
