package ingest

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of ServerLimits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout leaves a client 30 s to send a request, body
	// included: an 8 MiB batch at 2 Mbit/s.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout runs from the end of the headers, so it covers
	// reading the body, the handler's write to Kafka (ProduceTimeout) and
	// the answer.
	DefaultWriteTimeout   = 60 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxConnections = 1024
)

// ServerLimits bound what a client can hold of an HTTP listener: how long
// it may take to send a request and read the answer, how long an idle
// keep-alive connection stays open, and how many connections are served at
// once. Zero values take the defaults above.
type ServerLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its answer.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request.
	IdleTimeout time.Duration
	// MaxConnections is how many connections are served at once; more
	// wait in the listen backlog until one closes.
	MaxConnections int
}

func (l ServerLimits) withDefaults() ServerLimits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	return l
}

// Server returns an http.Server for h with every timeout set.
func (l ServerLimits) Server(h http.Handler) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
	}
}

// Listener wraps ln so that at most MaxConnections of its connections are
// open at once: Accept waits while that many are.
func (l ServerLimits) Listener(ln net.Listener) net.Listener {
	l = l.withDefaults()
	return &limitListener{Listener: ln, slots: make(chan struct{}, l.MaxConnections), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
