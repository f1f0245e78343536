package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookline/hookline/internal/ingest"
)

// Embedded is the single-node development Kafka broker that hookline runs
// when no brokers are configured. It is franz-go's kfake with its state
// persisted under a data directory: topics, records, committed offsets
// (plain and transactional), producer ids and transactions survive a
// restart. It speaks the Kafka protocol, so any Kafka client can produce to
// it. It is not replicated and is not meant for production.
type Embedded struct {
	cluster *kfake.Cluster
	addrs   []string
	dir     string
	logger  *slog.Logger
	once    sync.Once
}

// Settings of the embedded broker that differ from kfake's defaults.
const (
	// embeddedMinSessionTimeout lets clients choose short classic group
	// session timeouts, so that a killed process's partitions move within
	// seconds on a laptop; real Kafka's minimum is 6s.
	embeddedMinSessionTimeout = time.Second
	embeddedMaxSessionTimeout = 5 * time.Minute
)

// StartEmbedded starts the embedded broker listening on listen (host:port;
// port 0 picks a free one) and persisting under dataDir/kafka. Topics
// created without a partition count get partitions. logger receives the
// broker's warnings and errors; nil discards them.
//
// Only one process may use a data directory at a time: the broker does not
// lock it.
func StartEmbedded(listen, dataDir string, partitions int32, logger *slog.Logger) (*Embedded, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka broker listen address %q: %w", listen, err)
	}
	if partitions < 1 {
		return nil, fmt.Errorf("embedded kafka broker: default partitions must be positive, got %d", partitions)
	}
	if dataDir == "" {
		return nil, errors.New("embedded kafka broker: data directory must not be empty")
	}
	dir := filepath.Join(dataDir, "kafka")
	// The log holds every event and, without a secret_key, every signing
	// secret. kfake makes its directories 0755 and its files 0644 and takes
	// no mode, so the broker's directory is made 0700 before it starts:
	// nothing under it is reachable by other users. A data directory that
	// does not exist yet is created 0700 too; one that does keeps its mode.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded kafka broker: create data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded kafka broker: create data directory: %w", err)
	}
	if err := makePrivate(dir); err != nil {
		return nil, fmt.Errorf("embedded kafka broker: make %s private: %w", dir, err)
	}

	// A crash between kfake's two writes of a batch would make an
	// interrupted transaction's records visible (see repairTornIndexes).
	repaired, err := repairTornIndexes(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka broker: check the data in %s after a crash: %w", dir, err)
	}
	if len(repaired) > 0 {
		logger.Warn("embedded kafka broker: a crash cut a write short; restored the index entries of the last batches written, so that the transactions the crash interrupted stay uncommitted",
			"partitions", repaired)
	}

	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		// kfake always asks for 127.0.0.1:<port>; we listen where we
		// were told instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, listen)
			if err != nil {
				return nil, err
			}
			return advertise(ln, host), nil
		}),
		kfake.DataDir(dir),
		kfake.ClusterID("hookline-embedded"),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.GroupMinSessionTimeout(embeddedMinSessionTimeout),
		kfake.GroupMaxSessionTimeout(embeddedMaxSessionTimeout),
		kfake.BrokerConfigs(map[string]string{
			// kfake describes 3 while creating 1 replica on one
			// broker; say what it does.
			"default.replication.factor": "1",
			// KIP-848 groups (kgo.ServerSideBalancer): notice a
			// dead member within seconds, as on a laptop one
			// restarts often.
			"group.consumer.heartbeat.interval.ms": "1000",
			"group.consumer.session.timeout.ms":    "10000",
		}),
		kfake.WithLogger(kfakeLogger{logger.With("component", "embedded-kafka")}),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka broker on %s (data in %s): %w", listen, dir, err)
	}
	e := &Embedded{cluster: cluster, addrs: cluster.ListenAddrs(), dir: dir, logger: logger}
	logger.Warn("embedded single-node development Kafka broker (kfake); use --brokers for production",
		"addr", e.addrs[0], "data_dir", dir)
	if !ingest.IsLoopbackHost(host) {
		logger.Warn("INSECURE: the embedded kafka broker listens beyond loopback and has no authentication: whoever reaches it reads and writes every topic, endpoint secrets included; keep kafka_listen on 127.0.0.1",
			"kafka_listen", listen)
	}
	return e, nil
}

// Addrs returns the broker's address, for clients' seed brokers.
func (e *Embedded) Addrs() []string {
	return append([]string(nil), e.addrs...)
}

// Close stops the broker and writes its state to disk. Close clients first:
// kfake saves the group members and open transactions it still knows at
// Close and restores them on the next start, where a stale member holds up
// its group's rebalance until its session times out and an open transaction
// holds back read-committed consumers until it times out. Close is safe to
// call more than once.
func (e *Embedded) Close() {
	e.once.Do(func() {
		e.cluster.Close()
		// The modes of what kfake wrote say private too, not only the
		// directory around them.
		if err := makePrivate(e.dir); err != nil {
			e.logger.Warn("embedded kafka broker: make data private", "data_dir", e.dir, "err", err)
		}
	})
}

// makePrivate makes dir and every directory under it 0700 and every file
// 0600.
func makePrivate(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		} else if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() == mode {
			return nil
		}
		return os.Chmod(path, mode)
	})
}

// advertise makes the broker advertise a dialable address when it listens
// on all interfaces: kfake puts its listener's address in metadata, and
// 0.0.0.0 is not somewhere a client can connect to. Clients on this host
// reach loopback; clients elsewhere need a listen address with a host.
func advertise(ln net.Listener, host string) net.Listener {
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return ln
	}
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		return ln
	}
	loopback := net.IPv4(127, 0, 0, 1)
	if ip != nil && ip.To4() == nil {
		loopback = net.IPv6loopback
	}
	return advertisedListener{ln, &net.TCPAddr{IP: loopback, Port: tcp.Port}}
}

type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// kfakeLogger forwards kfake's warnings and errors to slog; its info and
// debug logs are per request and far too chatty.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	default:
		return
	}
	ctx := context.Background()
	if k.l.Enabled(ctx, sl) {
		k.l.Log(ctx, sl, fmt.Sprintf(format, args...))
	}
}
