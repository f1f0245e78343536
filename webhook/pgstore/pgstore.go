// Package pgstore is the idempotent receiver on PostgreSQL: net/http
// middleware that verifies a hookline delivery, claims its webhook-id in a
// processed_webhooks table and runs the receiver's handler in the database
// transaction that marks the id completed, so that the handler's side
// effects happen once per event however often it is delivered.
//
//	store, err := pgstore.New(ctx, pool, pgstore.Options{})
//	h, err := store.Handler(pgstore.HandlerOptions{Keys: keys}, func(ctx context.Context, tx pgx.Tx, ev pgstore.Event) error {
//		_, err := tx.Exec(ctx, "INSERT INTO payments ...", ...)
//		return err
//	})
//	http.Handle("POST /webhooks", h)
//
// The answers: 200 {"duplicate":false} when the handler committed; 200
// {"duplicate":true} for an id already completed; 409 with Retry-After while
// another request holds the id (hookline retries a 409 later); 500 when the
// handler failed (its transaction rolled back, the id stays retryable); and
// the webhook package's 400/401/413 for a request that fails verification.
// docs/outbox.md has the table and the flow. It is a package of its own so
// that receivers without PostgreSQL do not link pgx.
package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/signature"
	"github.com/hookline/hookline/webhook"
)

// Defaults of Options and HandlerOptions.
const (
	DefaultTable = "processed_webhooks"
	// DefaultTTL is how long a completed id is remembered: longer than
	// hookline's whole default retry schedule (about 1 h 13 min) with room
	// for an operator's replay of the DLQ.
	DefaultTTL             = 7 * 24 * time.Hour
	DefaultRetryAfter      = 5 * time.Second
	DefaultCleanupInterval = time.Hour
)

// Options configure a Store.
type Options struct {
	// Table is the table's name; default DefaultTable.
	Table string
	// TTL is how long a completed id is remembered; default DefaultTTL.
	TTL time.Duration
	// Now reads the clock; default time.Now.
	Now func() time.Time
}

// Store is the processed_webhooks table.
type Store struct {
	pool *pgxpool.Pool
	o    Options
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// New creates the table if it does not exist and returns the Store.
func New(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !identifier.MatchString(o.Table) {
		return nil, fmt.Errorf("pgstore: Table %q: want a lower-case SQL identifier", o.Table)
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.TTL < 0 {
		return nil, errors.New("pgstore: TTL must not be negative")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+o.Table+` (
    event_id               text PRIMARY KEY,
    event_type             text NOT NULL DEFAULT '',
    received_at            timestamptz NOT NULL DEFAULT now(),
    status                 text NOT NULL,
    response_code          integer,
    idempotency_expires_at timestamptz NOT NULL
)`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: create table %s: %w", o.Table, err)
	}
	return &Store{pool: pool, o: o}, nil
}

// Event is a verified delivery as the handler gets it.
type Event struct {
	// ID is the webhook-id: the event id, the same on every attempt.
	ID string
	// Type is the event type from the body.
	Type string
	// Timestamp is the webhook-timestamp of this attempt.
	Timestamp time.Time
	// Data is the event's payload, byte for byte as its producer sent it.
	Data json.RawMessage
	// Body is the whole request body.
	Body []byte
}

// HandlerFunc processes one event inside tx. An error rolls tx back and
// leaves the event to be delivered again.
type HandlerFunc func(ctx context.Context, tx pgx.Tx, ev Event) error

// HandlerOptions configure Handler. Keys is required.
type HandlerOptions struct {
	// Keys verify signatures, as webhook.Options.Keys.
	Keys []string
	// Tolerance is how far webhook-timestamp may be from now; default
	// signature.DefaultTolerance.
	Tolerance time.Duration
	// MaxBodyBytes bounds the request body; default webhook.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RetryAfter is sent with a 409; default DefaultRetryAfter.
	RetryAfter time.Duration
	// Logger gets handler failures; default discarding.
	Logger *slog.Logger
}

// Outcome is what one delivery came to.
type Outcome int

// Outcomes of Process.
const (
	// Completed: the handler ran and committed.
	Completed Outcome = iota
	// Duplicate: the id was completed before; nothing ran.
	Duplicate
	// Busy: another request holds the id right now; nothing ran.
	Busy
)

// Process is the flow for one verified event: claim its id, then run h in
// the transaction that marks it completed. An error means h failed (or the
// database did) and nothing of h was committed.
func (s *Store) Process(ctx context.Context, ev Event, h HandlerFunc) (Outcome, error) {
	expires := s.o.Now().Add(s.o.TTL)
	// The claim row exists from the first delivery on; the row lock taken
	// below is what says "being processed", so a crashed receiver frees it
	// with its connection and nothing has to expire.
	if _, err := s.pool.Exec(ctx, `INSERT INTO `+s.o.Table+` (event_id, event_type, status, idempotency_expires_at)
		VALUES ($1, $2, 'processing', $3) ON CONFLICT (event_id) DO NOTHING`, ev.ID, ev.Type, expires); err != nil {
		return 0, fmt.Errorf("claim %s: %w", ev.ID, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var status string
	err = tx.QueryRow(ctx, `SELECT status FROM `+s.o.Table+` WHERE event_id = $1 FOR UPDATE NOWAIT`, ev.ID).Scan(&status)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "55P03": // lock_not_available
		return Busy, nil
	case errors.Is(err, pgx.ErrNoRows):
		// Cleaned up between the claim and the lock: someone completed
		// it long ago.
		return Duplicate, nil
	case err != nil:
		return 0, fmt.Errorf("lock %s: %w", ev.ID, err)
	case status == "completed":
		return Duplicate, nil
	}
	if err := runHandler(ctx, tx, ev, h); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE `+s.o.Table+` SET status = 'completed', response_code = 200, idempotency_expires_at = $2
		WHERE event_id = $1`, ev.ID, expires); err != nil {
		return 0, fmt.Errorf("mark %s completed: %w", ev.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit %s: %w", ev.ID, err)
	}
	return Completed, nil
}

// runHandler runs h, turning a panic into an error so that tx rolls back.
func runHandler(ctx context.Context, tx pgx.Tx, ev Event, h HandlerFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked on %s: %v", ev.ID, p)
		}
	}()
	if err := h(ctx, tx, ev); err != nil {
		return fmt.Errorf("handler failed on %s: %w", ev.ID, err)
	}
	return nil
}

// Cleanup deletes the rows whose idempotency_expires_at has passed and
// returns how many.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.o.Table+` WHERE idempotency_expires_at < $1`, s.o.Now())
	if err != nil {
		return 0, fmt.Errorf("clean up %s: %w", s.o.Table, err)
	}
	return tag.RowsAffected(), nil
}

// RunCleanup runs Cleanup every interval (default DefaultCleanupInterval)
// until ctx ends; errors are logged and tried again next time.
func (s *Store) RunCleanup(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultCleanupInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.Cleanup(ctx); err != nil {
			log.Warn("processed_webhooks cleanup failed", "err", err)
		} else if n > 0 {
			log.Info("processed_webhooks cleaned up", "rows", n)
		}
	}
}

// Handler is the whole receiver: verification, then Process with h.
func (s *Store) Handler(o HandlerOptions, h HandlerFunc) (http.Handler, error) {
	if len(o.Keys) == 0 {
		return nil, errors.New("pgstore: Keys: at least one whsec_ secret or whpk_ public key is required")
	}
	for i, k := range o.Keys {
		if err := signature.ValidateVerifyKey(k); err != nil {
			return nil, fmt.Errorf("pgstore: Keys[%d]: %w", i, err)
		}
	}
	if o.Tolerance <= 0 {
		o.Tolerance = signature.DefaultTolerance
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = webhook.DefaultMaxBodyBytes
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, d, ok := webhook.ReadVerified(w, r, o.Keys, o.Tolerance, o.MaxBodyBytes, s.o.Now())
		if !ok {
			return
		}
		var b struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&b); err != nil {
			http.Error(w, "body is not a hookline event", http.StatusUnprocessableEntity)
			return
		}
		ev := Event{ID: d.ID, Type: b.Type, Timestamp: d.Timestamp, Data: b.Data, Body: body}
		out, err := s.Process(r.Context(), ev, h)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case err != nil:
			o.Logger.Warn("webhook not processed; the sender will retry", "webhook_id", ev.ID, "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"not processed; retry"}`+"\n")
		case out == Busy:
			w.Header().Set("Retry-After", strconv.Itoa(int(max(o.RetryAfter.Seconds(), 1))))
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":"this webhook-id is being processed"}`+"\n")
		case out == Duplicate:
			w.Header().Set(webhook.HeaderDuplicate, "true")
			_, _ = io.WriteString(w, `{"duplicate":true}`+"\n")
		default:
			_, _ = io.WriteString(w, `{"duplicate":false}`+"\n")
		}
	}), nil
}
