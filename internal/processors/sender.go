package processors

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/signature"
)

// UserAgent is sent with every webhook request.
const UserAgent = "hookline/1"

// MaxResponseBytes is how much of a response body the sender reads. Receivers
// owe us only a status; a huge or endless body must not hold a partition.
const MaxResponseBytes = 64 << 10

// DefaultMaxIdleConnsPerHost is the idle connection pool per endpoint host
// of a Sender built without SenderOptions.MaxIdleConnsPerHost. A service
// sizes it to the requests it may have in flight to one host instead
// (config.Config.IdleConnsPerHost: partitions x concurrency).
const DefaultMaxIdleConnsPerHost = 64

// SenderOptions tune the HTTP client of a Sender. Zero values take defaults.
type SenderOptions struct {
	// DialTimeout bounds connecting to an endpoint; default 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout; default 10s.
	TLSHandshakeTimeout time.Duration
	// IdleConnTimeout is how long a kept-alive connection may idle; default 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is how many kept-alive connections to one host
	// are kept for reuse; default DefaultMaxIdleConnsPerHost. It should be
	// at least the requests that may be in flight to one host at once: a
	// connection that finds the pool full when its request ends is closed,
	// and the next request pays a new dial (and TLS handshake).
	MaxIdleConnsPerHost int
	// Now reads the clock for latency and Retry-After dates; default time.Now.
	Now func() time.Time
	// Destinations decides which addresses may be dialed; the zero value
	// refuses loopback, private, link-local and other special ranges.
	Destinations DestinationPolicy
	// RootCAs verify endpoint certificates; nil means the system roots.
	// Verification cannot be turned off.
	RootCAs *x509.CertPool
}

// Sender POSTs signed webhooks. It is safe for concurrent use.
//
// Endpoints without a client certificate share one transport. Each endpoint
// with one gets its own, a clone of the shared one (same SSRF-guarded
// dialer, timeouts and roots) that presents the certificate; it is kept
// while the endpoint's certificate and key stay the same.
type Sender struct {
	client *http.Client
	base   *http.Transport
	now    func() time.Time

	mu   sync.Mutex
	mtls map[string]mtlsClient // by endpoint id
}

// mtlsClient is the HTTP client of an endpoint with a client certificate.
type mtlsClient struct {
	fingerprint string // endpoints.Endpoint.ClientCertFingerprint
	client      *http.Client
}

// Result is the outcome of one request, already classified.
type Result struct {
	// StatusCode is 0 when no response arrived (Err is set then).
	StatusCode int
	// Err is the transport error or why the request could not be made.
	Err     error
	Verdict Verdict
	Class   ErrorClass
	Latency time.Duration
	// RetryAfter is the wait a 409, 429 or 503 asked for, 0 if none.
	RetryAfter    time.Duration
	RequestBytes  int
	ResponseBytes int
	// Skipped is set when no request went out because the endpoint cannot be
	// sent to as configured (no valid secret, unusable URL).
	Skipped bool
}

// Failure describes a failed result in one line for attempt records, DLQ
// reasons and logs; "" when delivered.
func (r Result) Failure() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.Verdict == Delivered:
		return ""
	}
	return fmt.Sprintf("HTTP %d %s", r.StatusCode, http.StatusText(r.StatusCode))
}

// NewSender builds a Sender with its own transport. Proxies from the
// environment are ignored: webhook traffic goes straight to the endpoints
// operators registered, and a stray HTTP_PROXY must not reroute it.
func NewSender(opts SenderOptions) *Sender {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.TLSHandshakeTimeout <= 0 {
		opts.TLSHandshakeTimeout = 10 * time.Second
	}
	if opts.IdleConnTimeout <= 0 {
		opts.IdleConnTimeout = 90 * time.Second
	}
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The policy runs in Control, on the address actually dialed after DNS
	// resolution, so a name that resolves to 169.254.169.254 is refused too.
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second, Control: opts.Destinations.Control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
		IdleConnTimeout:       opts.IdleConnTimeout,
		TLSHandshakeTimeout:   opts.TLSHandshakeTimeout,
		ExpectContinueTimeout: time.Second,
	}
	if opts.RootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &Sender{client: newHTTPClient(tr), base: tr, now: opts.Now, mtls: make(map[string]mtlsClient)}
}

func newHTTPClient(tr http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: tr,
		// A redirect is an answer, not a detour: following it would send a
		// signed payload to a URL nobody registered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Close releases idle connections.
func (s *Sender) Close() {
	s.client.CloseIdleConnections()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.mtls {
		c.client.CloseIdleConnections()
	}
}

// clientFor returns the HTTP client for the endpoint: the shared one, or the
// endpoint's own when it has a client certificate. A changed certificate or
// key replaces the endpoint's client.
func (s *Sender) clientFor(ep endpoints.Endpoint) (*http.Client, error) {
	if !ep.HasClientCert() {
		return s.client, nil
	}
	fp := ep.ClientCertFingerprint()
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.mtls[ep.ID]
	if ok && old.fingerprint == fp {
		return old.client, nil
	}
	pair, err := ep.ClientCertificate()
	if err != nil {
		return nil, err
	}
	tr := s.base.Clone() // keeps the SSRF-guarded dialer
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.base.TLSClientConfig != nil {
		tc = s.base.TLSClientConfig.Clone()
	}
	tc.Certificates = []tls.Certificate{pair}
	tr.TLSClientConfig = tc
	c := mtlsClient{fingerprint: fp, client: newHTTPClient(tr)}
	s.mtls[ep.ID] = c
	if ok {
		old.client.CloseIdleConnections()
	}
	return c.client, nil
}

// Send POSTs body to the endpoint, signed under msgID and ts with all its
// current secrets and the retiring ones not yet expired at ts, within the
// endpoint's timeout. It never returns an error: every outcome is a
// classified Result. An endpoint without a valid secret is a permanent
// failure (ClassNoSecret): sending unsigned would teach receivers to accept
// forgeries. So is one whose client certificate cannot be used
// (ClassClientCert; a key encrypted with a secret_key this process lacks).
//
// A TLS handshake the endpoint fails, one that requires a client
// certificate we do not present or do not present to its liking included,
// is a connection error (ClassConnection) and retryable: from here it looks
// like any other broken connection, and the fix (a certificate on the
// endpoint, a CA on the receiver) is usually made while the retry tiers
// still hold the event; after the last tier it goes to the DLQ and can be
// replayed.
func (s *Sender) Send(ctx context.Context, ep endpoints.Endpoint, msgID string, ts time.Time, body []byte) Result {
	res := Result{RequestBytes: len(body)}
	ctx, cancel := context.WithTimeout(ctx, ep.Timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		res.Err = fmt.Errorf("build request to endpoint %s: %w", ep.ID, err)
		res.Verdict, res.Class, res.Skipped = Permanent, ClassConnection, true
		return res
	}
	// Custom headers go first, so that what hookline sets wins even over
	// a record written before the reserved names were refused.
	for name, value := range ep.Headers {
		if !endpoints.ReservedHeader(name) {
			req.Header.Set(name, value)
		}
	}
	// Retiring secrets sign until they expire, so a receiver that still
	// holds the old secret keeps verifying during a rotation's overlap.
	if err := signature.Headers(req.Header, ep.SigningSecrets(ts), msgID, ts, body); err != nil {
		res.Err = fmt.Errorf("sign for endpoint %s: %w", ep.ID, err)
		res.Verdict, res.Class, res.Skipped = Permanent, ClassNoSecret, true
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	client, err := s.clientFor(ep)
	if err != nil {
		res.Err = fmt.Errorf("client certificate of endpoint %s: %w", ep.ID, err)
		res.Verdict, res.Class, res.Skipped = Permanent, ClassClientCert, true
		return res
	}

	start := s.now()
	resp, err := client.Do(req)
	if err != nil {
		res.Latency = s.now().Sub(start)
		res.Verdict, res.Class = Classify(0, err)
		// The URL may carry a token in its path or query; the error goes to
		// logs, the DLQ and ClickHouse, so name the endpoint instead.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		res.Err = fmt.Errorf("post to endpoint %s: %w", ep.ID, err)
		return res
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	// The status decides the outcome; an error while reading the rest of the
	// body (a receiver that hangs after answering) changes nothing.
	_ = resp.Body.Close()
	end := s.now()
	res.Latency = end.Sub(start)
	res.StatusCode = resp.StatusCode
	res.ResponseBytes = int(n)
	res.Verdict, res.Class = Classify(resp.StatusCode, nil)
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusConflict:
		res.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), end)
	}
	return res
}
