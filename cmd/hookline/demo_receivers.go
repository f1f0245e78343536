package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/hookline/hookline/signature"
)

// receiver is one local webhook endpoint of the demo.
type receiver struct {
	id     string
	kind   string // healthy, flaky, dead
	secret string
	url    string
	srv    *http.Server
}

func (d *demoRun) startReceivers() error {
	kinds := []string{"healthy", "healthy", "healthy", "flaky", "flaky", "dead"}
	for i, kind := range kinds {
		secret, err := signature.NewSecret()
		if err != nil {
			return err
		}
		rc := &receiver{id: fmt.Sprintf("demo-%s-%s-%d", d.id, kind, i), kind: kind, secret: secret}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("start demo receiver: %w", err)
		}
		rc.url = "http://" + ln.Addr().String() + "/webhook"
		if kind == "dead" {
			_ = ln.Close() // nothing listens: connection refused, every time
		} else {
			rc.srv = &http.Server{Handler: d.handler(rc), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = rc.srv.Serve(ln) }() // ErrServerClosed at the end
		}
		d.receivers = append(d.receivers, rc)
	}
	return nil
}

func (d *demoRun) close() {
	for _, rc := range d.receivers {
		if rc.srv != nil {
			_ = rc.srv.Close()
		}
	}
}

// handler verifies the signature of every request, like a careful receiver.
func (d *demoRun) handler(rc *receiver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := signature.Verify([]string{rc.secret}, r.Header, body, 5*time.Minute, time.Now()); err != nil {
			d.sigFails.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if rc.kind == "flaky" && rand.Float64() < 0.4 {
			status := http.StatusServiceUnavailable
			if rand.IntN(2) == 0 {
				status = http.StatusInternalServerError
			}
			http.Error(w, "flaky receiver says no", status)
			return
		}
		id := r.Header.Get("webhook-id")
		now := time.Now()
		d.mu.Lock()
		d.acked[id]++
		if d.acked[id] == 1 {
			lat := now.Sub(d.sentAt[id])
			d.latencies = append(d.latencies, lat)
			if lat < d.firstTry {
				d.firstPassAcks++
				d.lastFirstPass = now
			}
		}
		d.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}
