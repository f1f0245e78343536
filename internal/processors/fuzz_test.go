package processors

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// splitHeaders turns fuzz input into headers: records separated by \n, key
// and value by the first =.
func splitHeaders(b []byte) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, _ := bytes.Cut(line, []byte{'='})
		hs = append(hs, kgo.RecordHeader{Key: string(k), Value: v})
	}
	return hs
}

// ParseRetryState never panics; what it reads, Headers writes back so that
// it reads the same again.
func FuzzParseRetryState(f *testing.F) {
	f.Add([]byte(HeaderAttempts + "=3\n" + HeaderDue + "=1700000000123\n" + HeaderEndpoint + "=ep_1\n" + HeaderTier + "=retry.30s"))
	f.Add([]byte(HeaderOriginPartition + "=2147483648"))
	f.Add([]byte(HeaderOriginOffset + "=-1\n" + HeaderLastStatus + "=503\n" + HeaderLastError + "=boom"))
	f.Add([]byte(HeaderFirstAttempt + "=-9223372036854775808\n" + HeaderEntered + "=9223372036854775807"))
	f.Add([]byte("unrelated=1\n" + HeaderAttempts + "=-1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseRetryState(splitHeaders(in))
		if err != nil {
			if !errors.Is(err, ErrRetryHeader) {
				t.Fatalf("error %v does not wrap ErrRetryHeader", err)
			}
			return
		}
		s.LastError = TruncateError(s.LastError)
		again, err := ParseRetryState(s.Headers())
		if err != nil {
			t.Fatalf("ParseRetryState(Headers()) of a parsed state: %v", err)
		}
		if again != s {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", s, again)
		}
	})
}
