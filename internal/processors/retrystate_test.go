package processors

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/envelope"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRetryStateRoundTrip(t *testing.T) {
	ms := func(s int64) time.Time { return time.UnixMilli(s).UTC() }
	tests := []struct {
		name string
		s    RetryState
	}{
		{"zero", RetryState{}},
		{"tier record", RetryState{
			Attempts: 2, FirstAttempt: ms(1_700_000_000_123), Entered: ms(1_700_000_030_456), Due: ms(1_700_000_060_789),
			LastStatus: 503, LastError: "HTTP 503 Service Unavailable", LastClass: ClassHTTP5xx,
			OriginTopic: "events", OriginPartition: 7, OriginOffset: 123456789012,
			EndpointID: "ep_1", Tier: "retry.30s",
		}},
		{"dlq record", RetryState{
			Attempts: 5, FirstAttempt: ms(1), Entered: ms(2), LastClass: ClassTimeout,
			LastError: "context deadline exceeded", OriginTopic: "events", EndpointID: "ep_2",
			Tier: TierDLQ, DLQReason: "attempts exhausted after 5 attempts: context deadline exceeded",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRetryState(tt.s.Headers())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.s {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.s)
			}
		})
	}
}

func TestRetryStateHeaderFormat(t *testing.T) {
	s := RetryState{Attempts: 3, Due: time.UnixMilli(1_700_000_000_500), EndpointID: "ep_1", Tier: "retry.2m"}
	got := map[string]string{}
	for _, h := range s.Headers() {
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{
		"hookline-attempts": "3", "hookline-due-ms": "1700000000500", "hookline-endpoint": "ep_1",
		"hookline-tier": "retry.2m", "hookline-last-status": "0",
		"hookline-origin-partition": "0", "hookline-origin-offset": "0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("headers %v, want exactly %v", got, want)
	}
}

func TestRetryStateLastErrorIsBounded(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes, 2 per rune
	got, err := ParseRetryState(RetryState{LastError: long}.Headers())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.LastError) > MaxLastError || len(got.LastError) < MaxLastError-utf8.UTFMax || !utf8.ValidString(got.LastError) {
		t.Fatalf("LastError of %d bytes (valid UTF-8: %v), want at most %d and valid", len(got.LastError), utf8.ValidString(got.LastError), MaxLastError)
	}
	odd := "x" + strings.Repeat("€", 300) // the cut at 512 splits a 3-byte rune
	if tr := TruncateError(odd); !utf8.ValidString(tr) || len(tr) != 511 {
		t.Fatalf("TruncateError: %d bytes, valid %v; want 511 valid bytes", len(tr), utf8.ValidString(tr))
	}
}

func TestParseRetryStateNamesBadHeader(t *testing.T) {
	tests := []struct{ key, value string }{
		{HeaderAttempts, "two"},
		{HeaderAttempts, "-1"},
		{HeaderDue, "tomorrow"},
		{HeaderEntered, "1.5"},
		{HeaderFirstAttempt, ""},
		{HeaderLastStatus, "5xx"},
		{HeaderOriginPartition, "4294967296"},
		{HeaderOriginOffset, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			hs := append(RetryState{Attempts: 1, EndpointID: "ep"}.Headers(), kgo.RecordHeader{Key: tt.key, Value: []byte(tt.value)})
			_, err := ParseRetryState(hs)
			if !errors.Is(err, ErrRetryHeader) || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("ParseRetryState = %v, want ErrRetryHeader naming %s", err, tt.key)
			}
		})
	}
}

func TestDueOf(t *testing.T) {
	due := time.UnixMilli(1_700_000_000_250).UTC()
	tests := []struct {
		name    string
		headers []kgo.RecordHeader
		want    time.Time
		ok      bool
	}{
		{"from state", RetryState{Attempts: 1, Due: due}.Headers(), due, true},
		{"missing", RetryState{Attempts: 1}.Headers(), time.Time{}, false},
		{"unreadable", []kgo.RecordHeader{{Key: HeaderDue, Value: []byte("soon")}}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := DueOf(&kgo.Record{Headers: tt.headers})
			if !got.Equal(tt.want) || ok != tt.ok {
				t.Fatalf("DueOf = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCarryHeadersKeepsProducerHeaders(t *testing.T) {
	hs := []kgo.RecordHeader{
		{Key: envelope.HeaderVersion, Value: []byte("1")},
		{Key: envelope.HeaderIdempotencyKey, Value: []byte("idem-1")},
		{Key: "traceparent", Value: []byte("00-abc-def-01")},
	}
	hs = append(hs, RetryState{Attempts: 2, EndpointID: "ep", Tier: "retry.30s", LastError: "old"}.Headers()...)
	carried := CarryHeaders(hs)
	if len(carried) != 3 {
		t.Fatalf("carried %v, want the 3 producer headers", carried)
	}
	for i, h := range carried {
		if h.Key != hs[i].Key || string(h.Value) != string(hs[i].Value) {
			t.Fatalf("carried[%d] = %s=%s, want %s=%s", i, h.Key, h.Value, hs[i].Key, hs[i].Value)
		}
	}
	// A successor with new state has one value per retry header.
	next := append(carried, RetryState{Attempts: 3, EndpointID: "ep", Tier: "retry.2m", LastError: "new"}.Headers()...)
	s, err := ParseRetryState(next)
	if err != nil || s.Attempts != 3 || s.LastError != "new" || s.Tier != "retry.2m" {
		t.Fatalf("successor state %+v, %v", s, err)
	}
}
