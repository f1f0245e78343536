package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDatabase is the database hookline writes to unless told otherwise.
const DefaultDatabase = "hookline"

// Open connects to a ClickHouse server over the native protocol (host:port,
// usually port 9000) and checks that it answers. The connection's default
// database is "default": everything in this package names its database
// explicitly, so the hookline database need not exist yet.
func Open(ctx context.Context, addr string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:            []string{addr},
		Auth:            clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout:     5 * time.Second,
		ReadTimeout:     time.Minute,
		MaxOpenConns:    4,
		MaxIdleConns:    2,
		ConnMaxLifetime: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", addr, err)
	}
	return conn, nil
}
