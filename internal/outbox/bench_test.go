package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
)

// BenchmarkRelay measures the relay from PostgreSQL to the events topic
// against a raw produce of the same records, in the same run: rows/s is the
// rate of a warm relay from the commit of 20,000 rows until the table is
// empty, raw-produce/s
// the rate of producing the same envelopes in transactions of the same
// size with no PostgreSQL at all, and ratio the one over the other.
//
//	HOOKLINE_TEST_POSTGRES=$(deploy/postgres/postgres.sh dsn) go test -run '^$' -bench Relay -benchtime 3x ./outbox/
func BenchmarkRelay(b *testing.B) {
	const rows = 20000
	var relayTime, rawTime time.Duration
	for b.Loop() {
		relayTime += benchRelayOnce(b, rows)
		rawTime += benchRawOnce(b, rows)
	}
	n := float64(rows * b.N)
	b.ReportMetric(n/relayTime.Seconds(), "rows/s")
	b.ReportMetric(n/rawTime.Seconds(), "raw-produce/s")
	b.ReportMetric(rawTime.Seconds()/relayTime.Seconds(), "ratio")
}

func benchRelayOnce(b *testing.B, rows int) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	f := newFixture(b)
	src := make([][]any, rows)
	for i := range src {
		key := fmt.Sprintf("k%d", i%100)
		src[i] = []any{fmt.Sprintf("e-%d", i), "bench.event", "ep", key, fmt.Sprintf(`{"key":%q,"n":%d,"pad":"0123456789012345678901234567890123456789"}`, key, i)}
	}
	// The relay is warm (active, its topics known) before the rows come;
	// the clock runs from their commit until the table is empty.
	cfg := f.cfg
	cfg.Batch = DefaultBatch
	stop := f.run(cfg)
	if _, err := f.conn.Exec(b.Context(), "INSERT INTO "+f.table+" (id, type, endpoint_id, payload) VALUES ('warm-up', 'bench.event', 'ep', '{}')"); err != nil {
		b.Fatal(err)
	}
	for f.left() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := f.conn.CopyFrom(b.Context(), pgx.Identifier{f.table}, []string{"id", "type", "endpoint_id", "ordering_key", "payload"}, pgx.CopyFromRows(src)); err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for f.left() > 0 {
		if time.Now().After(deadline) {
			b.Fatal("relay did not drain the table within 5 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(began)
	stop()
	return took
}

func benchRawOnce(b *testing.B, rows int) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	f := newFixture(b)
	recs := make([]*kgo.Record, rows)
	for i := range recs {
		key := fmt.Sprintf("k%d", i%100)
		r, err := envelope.Record("events", envelope.Event{ID: fmt.Sprintf("e-%d", i), Type: "bench.event", EndpointID: "ep", OrderingKey: key,
			Payload: fmt.Appendf(nil, `{"key":%q,"n":%d,"pad":"0123456789012345678901234567890123456789"}`, key, i)})
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = r
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.TransactionalID("bench-raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	r := &Relay{cfg: f.cfg}
	began := time.Now()
	for i := 0; i < rows; i += DefaultBatch {
		if err := r.transact(context.Background(), cl, recs[i:min(i+DefaultBatch, rows)]); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(began)
}
