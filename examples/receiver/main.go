// Command receiver is an example webhook endpoint for hookline: it verifies
// every request with the webhook package (signature, timestamp, replays and
// duplicate webhook-ids) and logs the events it accepts.
//
//	WEBHOOK_KEYS=whsec_... go run ./examples/receiver -listen 127.0.0.1:9000
//
// WEBHOOK_KEYS holds the endpoint's whsec_ secret (v1) or whpk_ public key
// (v1a), comma-separated during a rotation. Then point an endpoint at it:
//
//	hookline endpoints add --url http://127.0.0.1:9000/webhooks --secret whsec_...
//
// (a local receiver needs hookline's --allow-private-destinations, or
// --allow-destinations 127.0.0.1/32).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hookline/hookline/webhook"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "listen `address`")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, os.Getenv("WEBHOOK_KEYS"), log); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

func run(listen, keys string, log *slog.Logger) error {
	verify, err := webhook.Middleware(webhook.Options{Keys: strings.Split(keys, ",")})
	if err != nil {
		return fmt.Errorf("WEBHOOK_KEYS: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks", verify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			// A permanent problem with this event: a 4xx sends it to the DLQ
			// instead of retrying it for hours.
			http.Error(w, "body is not a hookline event", http.StatusUnprocessableEntity)
			return
		}
		d, _ := webhook.FromContext(r.Context())
		log.Info("webhook received", "webhook_id", d.ID, "type", ev.Type, "sent_at", d.Timestamp.Format(time.RFC3339))
		w.WriteHeader(http.StatusNoContent)
	})))
	log.Info("receiver listening", "addr", listen)
	// Every timeout set: a client that sends slowly or idles cannot hold
	// connections open.
	srv := &http.Server{
		Addr: listen, Handler: mux,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: time.Minute,
	}
	return srv.ListenAndServe()
}
