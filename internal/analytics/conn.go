package analytics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hookline/hookline/internal/config"
)

// DefaultDatabase is the database hookline writes to unless told otherwise.
const DefaultDatabase = "hookline"

// DefaultUsername is the ClickHouse user of a connection that names none.
const DefaultUsername = "default"

// ConnOptions say how to reach and log in to a ClickHouse server.
type ConnOptions struct {
	// Addr is the native-protocol host:port (usually 9000, 9440 with TLS).
	Addr string
	// Username defaults to DefaultUsername.
	Username string
	// Password is never logged or part of an error.
	Password string
	// TLS connects over TLS, verifying the server's certificate against the
	// system roots or TLSCAFile.
	TLS bool
	// TLSCAFile is a PEM file of the CAs that sign the server's certificate.
	TLSCAFile string
	// TLSInsecureSkipVerify accepts any server certificate; testing only.
	TLSInsecureSkipVerify bool
}

// ConnOptionsFrom returns the options of cfg's ClickHouse settings.
func ConnOptionsFrom(cfg config.Config) ConnOptions {
	return ConnOptions{
		Addr:                  cfg.ClickHouse,
		Username:              cfg.ClickHouseUsername,
		Password:              cfg.ClickHousePassword,
		TLS:                   cfg.ClickHouseTLS,
		TLSCAFile:             cfg.ClickHouseTLSCAFile,
		TLSInsecureSkipVerify: cfg.ClickHouseTLSInsecureSkipVerify,
	}
}

// clickhouseOptions maps o to the driver's options. It reads TLSCAFile.
func (o ConnOptions) clickhouseOptions() (*clickhouse.Options, error) {
	if o.Addr == "" {
		return nil, errors.New("clickhouse: no address")
	}
	user := o.Username
	if user == "" {
		user = DefaultUsername
	}
	var tc *tls.Config
	if o.TLS {
		var err error
		tc, err = config.ClientTLS{CAFile: o.TLSCAFile, InsecureSkipVerify: o.TLSInsecureSkipVerify}.Build("clickhouse_tls")
		if err != nil {
			return nil, err
		}
	}
	return &clickhouse.Options{
		Addr:            []string{o.Addr},
		Auth:            clickhouse.Auth{Database: "default", Username: user, Password: o.Password},
		TLS:             tc,
		DialTimeout:     5 * time.Second,
		ReadTimeout:     time.Minute,
		MaxOpenConns:    4,
		MaxIdleConns:    2,
		ConnMaxLifetime: time.Hour,
	}, nil
}

// Open connects to a ClickHouse server over the native protocol and checks
// that it answers and accepts the credentials. The connection's default
// database is "default": everything in this package names its database
// explicitly, so the hookline database need not exist yet.
func Open(ctx context.Context, o ConnOptions) (driver.Conn, error) {
	opts, err := o.clickhouseOptions()
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		if ex, ok := errors.AsType[*clickhouse.Exception](err); ok && authCodes[ex.Code] {
			return nil, fmt.Errorf("clickhouse %s: %w: user %q was refused (check clickhouse_username and clickhouse_password): %w", o.Addr, ErrAuth, opts.Auth.Username, err)
		}
		return nil, fmt.Errorf("ping clickhouse %s: %w", o.Addr, err)
	}
	return conn, nil
}

// ErrAuth is wrapped by Open when ClickHouse refuses the user or password.
var ErrAuth = errors.New("clickhouse authentication failed")

// authCodes are the ClickHouse error codes of a refused login:
// UNKNOWN_USER, WRONG_PASSWORD and AUTHENTICATION_FAILED (what servers
// that do not say which of the two it was answer).
var authCodes = map[int32]bool{192: true, 193: true, 516: true}
