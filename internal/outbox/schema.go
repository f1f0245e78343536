// Package outbox is the producer side of hookline on PostgreSQL: the
// outbox_events table that producers write in their own transactions, and
// the relay that publishes each committed row to the events topic once, in
// order per ordering key, with one active relay among many. How it works and
// why it cannot skip or repeat a row: docs/outbox.md.
package outbox

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// DefaultTable is the outbox table's name.
const DefaultTable = "outbox_events"

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidateTable checks that table is a plain lower-case SQL identifier, so
// it can be put into statements as it is.
func ValidateTable(table string) error {
	if !identifier.MatchString(table) {
		return fmt.Errorf("outbox table %q: want a lower-case SQL identifier (letters, digits, _; at most 63)", table)
	}
	return nil
}

// Migrate creates the outbox table if it does not exist. It is safe to run
// any number of times.
func Migrate(ctx context.Context, conn *pgx.Conn, table string) error {
	if err := ValidateTable(table); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, `
CREATE TABLE IF NOT EXISTS `+table+` (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text        NOT NULL UNIQUE,
    type         text        NOT NULL,
    endpoint_id  text,
    tenant       text,
    ordering_key text,
    payload      json        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
)`)
	if err != nil {
		return fmt.Errorf("create outbox table %s: %w", table, err)
	}
	return nil
}
