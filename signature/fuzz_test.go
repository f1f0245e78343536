package signature

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Verify never panics and never accepts what the keys did not sign: a
// request that verifies has the signature Sign makes for its exact id,
// timestamp and body.
func FuzzVerify(f *testing.F) {
	v1 := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v1a := "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
	now := time.Unix(1_700_000_000, 0)
	for _, secrets := range [][]string{{v1}, {v1a}, {v1, v1a}} {
		h := http.Header{}
		if err := Headers(h, secrets, "msg_1", now, []byte(`{"a":1}`)); err != nil {
			f.Fatal(err)
		}
		f.Add("msg_1", h.Get(HeaderTimestamp), h.Get(HeaderSignature), []byte(`{"a":1}`))
	}
	f.Add("msg_1", "1700000000", "v1,", []byte{})
	f.Add("msg_1", "-9223372036854775808", "v1a,AAAA v2,x v1,,,", []byte("x"))
	f.Add("", "", "", []byte(nil))
	pk, err := PublicKey(v1a)
	if err != nil {
		f.Fatal(err)
	}
	keys := []string{v1, pk}
	f.Fuzz(func(t *testing.T, id, ts, sigs string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sigs)
		if err := Verify(keys, h, body, 0, now); err != nil {
			return
		}
		// Accepted: the header must hold a genuine signature of this message.
		unix, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
		if err != nil {
			t.Fatalf("accepted an unparsable timestamp %q", ts)
		}
		want, err := Sign([]string{v1}, h.Get(HeaderID), time.Unix(unix, 0), body)
		if err != nil {
			t.Fatal(err)
		}
		wantA, err := Sign([]string{v1a}, h.Get(HeaderID), time.Unix(unix, 0), body)
		if err != nil {
			t.Fatal(err)
		}
		if !containsField(h.Get(HeaderSignature), want) && !containsField(h.Get(HeaderSignature), wantA) {
			t.Fatalf("accepted id %q ts %q sigs %q body %q without a genuine signature", id, ts, sigs, body)
		}
	})
}

func containsField(sigs, want string) bool {
	return slices.Contains(strings.Fields(sigs), want)
}
