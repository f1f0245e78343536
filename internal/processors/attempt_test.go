package processors

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAttemptEncodingMatchesJSON holds Attempt.Record to json.Marshal, byte
// for byte, over many random attempts whose strings carry everything
// encoding/json escapes, floats of every magnitude and times in many zones.
// A field added to Attempt without its member in appendJSON fails it too.
func TestAttemptEncodingMatchesJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2026))
	pieces := []string{
		"", "a", "evt_0123456789", "hookline.events/3/42/ep_1", "retry.30s", "<script>&amp;</script>",
		"\"quoted\"", `back\slash`, "\n\r\t\b\f", "\x00\x01\x1f\x7f", "é", "日本語", "\u2028\u2029",
		"\xff", "\xe2\x80", "\xed\xa0\x80", "\U0001F600", " ", "HTTP 503 Service Unavailable",
	}
	str := func() string {
		var sb strings.Builder
		for range rng.IntN(4) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return sb.String()
	}
	floats := []float64{0, math.Copysign(0, -1), 1, 1.5, 0.1, 1e-6, 9.99e-7, 1e-7, 1e-300, 5e-324, 1e20, 1e21, 1.2345e22, math.MaxFloat64, 123456.789012}
	float := func() float64 {
		if rng.IntN(2) == 0 {
			f := floats[rng.IntN(len(floats))]
			if rng.IntN(2) == 0 {
				f = -f
			}
			return f
		}
		return math.Float64frombits(rng.Uint64()) // NaN and Inf included, rarely
	}
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", 5*3600+30*60), time.FixedZone("X", -11*3600), time.FixedZone("S", 3661)}
	tm := func() time.Time {
		switch rng.IntN(6) {
		case 0:
			return time.Time{}
		case 1:
			return time.Date(10000+rng.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC) // refused by both
		}
		return time.Unix(rng.Int64N(300_000_000_000)-60_000_000_000, rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
	}
	integer := func() int {
		if rng.IntN(4) == 0 {
			return int(rng.Int64()) - math.MaxInt64/2
		}
		return rng.IntN(1000)
	}
	for i := range 20000 {
		a := Attempt{
			AttemptID: str(), EventID: str(), EndpointID: str(), Tenant: str(), EventType: str(),
			Attempt: integer(), Tier: str(), Outcome: Outcome(str()), Skipped: rng.IntN(2) == 0,
			StatusCode: integer(), ErrorClass: ErrorClass(str()), Error: str(), LatencyMS: float(),
			RequestBytes: integer(), ResponseBytes: integer(), NextTier: str(),
			StartedAt: tm(), FinishedAt: tm(), FirstAttempt: tm(),
		}
		r, err := a.Record(attemptsTopic)
		a.V = AttemptVersion
		want, wantErr := json.Marshal(a)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("attempt %d %+v: Record error %v, json.Marshal error %v", i, a, err, wantErr)
		}
		if err != nil {
			continue
		}
		if !bytes.Equal(r.Value, want) {
			t.Fatalf("attempt %d:\n got %s\nwant %s", i, r.Value, want)
		}
		if string(r.Key) != a.EndpointID || r.Topic != attemptsTopic {
			t.Fatalf("attempt %d: key %q topic %q, want %q and %q", i, r.Key, r.Topic, a.EndpointID, attemptsTopic)
		}
		// What AttemptOf hands the metrics is what decoding the value gives.
		kept, err := AttemptOf(r)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := DecodeAttempt(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if !sameAttempt(kept, decoded) {
			t.Fatalf("attempt %d: AttemptOf\n%+v\nDecodeAttempt\n%+v", i, kept, decoded)
		}
	}
}

// sameAttempt compares attempts with their times as the record writes them
// (RFC 3339 drops the seconds of a zone offset, as in some zones' LMT).
func sameAttempt(a, b Attempt) bool {
	for _, p := range [][2]*time.Time{{&a.StartedAt, &b.StartedAt}, {&a.FinishedAt, &b.FinishedAt}, {&a.FirstAttempt, &b.FirstAttempt}} {
		if p[0].Format(time.RFC3339Nano) != p[1].Format(time.RFC3339Nano) {
			return false
		}
		*p[0], *p[1] = time.Time{}, time.Time{}
	}
	return reflect.DeepEqual(a, b)
}

func TestAttemptID(t *testing.T) {
	long := strings.Repeat("e", 200)
	for _, tc := range []struct {
		topic      string
		partition  int32
		offset     int64
		endpointID string
		want       string
	}{
		{"hookline.events", 3, 42, "ep_1", "hookline.events/3/42/ep_1"},
		{"hookline.retry.30s", 0, 0, "", "hookline.retry.30s/0/0/"},
		{"t", math.MaxInt32, math.MaxInt64, long, "t/2147483647/9223372036854775807/" + long},
		{"t", -1, -1, "x", "t/-1/-1/x"},
	} {
		if got := AttemptID(tc.topic, tc.partition, tc.offset, tc.endpointID); got != tc.want {
			t.Errorf("AttemptID(%q, %d, %d, %q) = %q, want %q", tc.topic, tc.partition, tc.offset, tc.endpointID, got, tc.want)
		}
	}
}
