// Command outbox is an example producer for hookline's transactional
// outbox: it marks an invoice paid and writes the invoice.paid event into
// outbox_events in the same PostgreSQL transaction, so the event is sent if
// and only if the change commits. hookline's relay (hookline outbox, or
// serve --outbox-postgres) publishes the row; docs/outbox.md.
//
//	deploy/postgres/postgres.sh start
//	hookline migrate --postgres "$(deploy/postgres/postgres.sh dsn)"
//	go run ./examples/outbox -postgres "$(deploy/postgres/postgres.sh dsn)" -invoice in_42 -endpoint acme-billing
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
)

func main() {
	dsn := flag.String("postgres", os.Getenv("DATABASE_URL"), "PostgreSQL `DSN` (env DATABASE_URL)")
	invoice := flag.String("invoice", "in_42", "invoice `id` to mark paid")
	endpoint := flag.String("endpoint", "acme-billing", "hookline endpoint `id` to notify")
	flag.Parse()
	if err := run(context.Background(), *dsn, *invoice, *endpoint); err != nil {
		fmt.Fprintln(os.Stderr, "outbox example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn, invoice, endpoint string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	// The business table of this example.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS invoices (id text PRIMARY KEY, customer text NOT NULL, status text NOT NULL)`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `INSERT INTO invoices VALUES ($1, 'customer-7', 'open') ON CONFLICT DO NOTHING`, invoice); err != nil {
		return err
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	var customer string
	err = tx.QueryRow(ctx, `UPDATE invoices SET status = 'paid' WHERE id = $1 AND status <> 'paid' RETURNING customer`, invoice).Scan(&customer)
	if err == pgx.ErrNoRows {
		fmt.Printf("invoice %s is already paid: no event\n", invoice)
		return nil
	}
	if err != nil {
		return err
	}
	payload, err := json.Marshal(map[string]string{"invoice": invoice, "customer": customer})
	if err != nil {
		return err
	}
	// The event id is also the webhook-id receivers dedupe by: derive it
	// from the business fact, so a retried transaction cannot send twice.
	id := "invoice-" + invoice + "-paid"
	// The ordering key keeps one customer's events in order.
	if _, err := tx.Exec(ctx, `INSERT INTO outbox_events (id, type, endpoint_id, ordering_key, payload) VALUES ($1, 'invoice.paid', $2, $3, $4)`,
		id, endpoint, customer, string(payload)); err != nil {
		return fmt.Errorf("write the outbox row (did you run hookline migrate --postgres?): %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	fmt.Printf("invoice %s paid; event %s is in the outbox\n", invoice, id)
	return nil
}
