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
//
// With -postgres DSN it is the idempotent receiver of docs/outbox.md: each
// webhook-id is claimed in processed_webhooks and the handler's side effect
// (a row in received_events) commits in the same transaction as the
// "completed" mark (webhook/pgstore), so it happens once per event.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/webhook"
	"github.com/hookline/hookline/webhook/pgstore"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "listen `address`")
	dsn := flag.String("postgres", "", "PostgreSQL `DSN`: dedupe in processed_webhooks and record each event in received_events, in one transaction")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	if *dsn != "" {
		err = runPostgres(*listen, *dsn, os.Getenv("WEBHOOK_KEYS"), log)
	} else {
		err = run(*listen, os.Getenv("WEBHOOK_KEYS"), log)
	}
	if err != nil {
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
	return serve(listen, mux, log)
}

// runPostgres is the receiver with the PostgreSQL store.
func runPostgres(listen, dsn, keys string, log *slog.Logger) error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("-postgres: %w", err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.Options{})
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS received_events (event_id text PRIMARY KEY, type text NOT NULL, data json NOT NULL)`); err != nil {
		return err
	}
	go store.RunCleanup(ctx, time.Hour, log)
	h, err := store.Handler(pgstore.HandlerOptions{Keys: strings.Split(keys, ","), Logger: log}, func(ctx context.Context, tx pgx.Tx, ev pgstore.Event) error {
		// The business side effect, in the transaction that marks the
		// webhook-id completed: it commits once, or not at all.
		_, err := tx.Exec(ctx, `INSERT INTO received_events (event_id, type, data) VALUES ($1, $2, $3)`, ev.ID, ev.Type, string(ev.Data))
		if err == nil {
			log.Info("webhook processed", "webhook_id", ev.ID, "type", ev.Type)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("WEBHOOK_KEYS: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks", h)
	return serve(listen, mux, log)
}

func serve(listen string, h http.Handler, log *slog.Logger) error {
	log.Info("receiver listening", "addr", listen)
	// Every timeout set: a client that sends slowly or idles cannot hold
	// connections open.
	srv := &http.Server{
		Addr: listen, Handler: h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: time.Minute,
	}
	return srv.ListenAndServe()
}
