package config

import (
	"fmt"
	"net"
	"time"

	"github.com/hookline/hookline/internal/ingest"
)

// validateHTTP checks the limits of the HTTP listeners.
func (c Config) validateHTTP() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"http_read_header_timeout", c.HTTPReadHeaderTimeout},
		{"http_read_timeout", c.HTTPReadTimeout},
		{"http_write_timeout", c.HTTPWriteTimeout},
		{"http_idle_timeout", c.HTTPIdleTimeout},
	} {
		if d.v <= 0 {
			bad(d.field, "must be positive, got %v", d.v)
		}
	}
	if c.HTTPReadHeaderTimeout > 0 && c.HTTPReadTimeout > 0 && c.HTTPReadHeaderTimeout > c.HTTPReadTimeout {
		bad("http_read_header_timeout", "must not be longer than http_read_timeout (%v), got %v", c.HTTPReadTimeout, c.HTTPReadHeaderTimeout)
	}
	// The write timeout runs from the end of the headers, so it must leave
	// room for reading the body.
	if c.HTTPReadTimeout > 0 && c.HTTPWriteTimeout > 0 && c.HTTPWriteTimeout < c.HTTPReadTimeout {
		bad("http_write_timeout", "must be at least http_read_timeout (%v), got %v", c.HTTPReadTimeout, c.HTTPWriteTimeout)
	}
	if c.HTTPMaxConnections < 1 {
		bad("http_max_connections", "must be at least 1, got %d", c.HTTPMaxConnections)
	}
	if len(c.Tokens) == 0 && !c.InsecureNoAuth && !c.ListenIsLoopback() {
		bad("listen", "%s is reachable from other hosts, and with no tokens configured anyone who can connect may send events and manage endpoints; configure tokens, listen on 127.0.0.1, or set insecure_no_auth", c.Listen)
	}
	return errs
}

// ListenIsLoopback reports whether the API listens on loopback only
// (127.0.0.0/8, ::1 or localhost), so only this host can reach it.
func (c Config) ListenIsLoopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	return err == nil && ingest.IsLoopbackHost(host)
}

// ServerLimits are the limits of every HTTP listener.
func (c Config) ServerLimits() ingest.ServerLimits {
	return ingest.ServerLimits{
		ReadHeaderTimeout: c.HTTPReadHeaderTimeout,
		ReadTimeout:       c.HTTPReadTimeout,
		WriteTimeout:      c.HTTPWriteTimeout,
		IdleTimeout:       c.HTTPIdleTimeout,
		MaxConnections:    c.HTTPMaxConnections,
	}
}
