package signature_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hookline/hookline/signature"
)

// The sender signs a request with the endpoint's secret; the receiver
// verifies it with the same secret. The secret, id, timestamp and body are
// the Standard Webhooks test vector, so the signature is the one the
// specification gives.
func Example() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)

	h := http.Header{}
	if err := signature.Headers(h, []string{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("webhook-id:", h.Get("webhook-id"))
	fmt.Println("webhook-timestamp:", h.Get("webhook-timestamp"))
	fmt.Println("webhook-signature:", h.Get("webhook-signature"))

	err := signature.Verify([]string{secret}, h, body, signature.DefaultTolerance, ts.Add(time.Minute))
	fmt.Println("verified:", err == nil)
	err = signature.Verify([]string{secret}, h, []byte(`{"test": 1}`), signature.DefaultTolerance, ts.Add(time.Minute))
	fmt.Println("tampered body verified:", err == nil)
	// Output:
	// webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
	// webhook-timestamp: 1614265330
	// webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// verified: true
	// tampered body verified: false
}
