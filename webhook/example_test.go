package webhook_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hookline/hookline/signature"
	"github.com/hookline/hookline/webhook"
)

// The middleware lets a verified request through to the handler once per
// webhook-id: a repeat is answered 200 with Webhook-Duplicate: true and
// does not reach the handler, and a request with a bad signature is refused.
func Example() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	now := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	mw, err := webhook.Middleware(webhook.Options{
		Keys: []string{secret},
		Now:  func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	handler := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := webhook.FromContext(r.Context())
		fmt.Println("handled", d.ID)
	}))

	body := `{"type":"invoice.paid","data":{"invoice":"42"}}`
	send := func(sig string) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
		if err := signature.Headers(req.Header, []string{secret}, "evt-1", now, []byte(body)); err != nil {
			fmt.Println(err)
			return
		}
		if sig != "" {
			req.Header.Set("webhook-signature", sig)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Printf("%d duplicate=%t\n", rec.Code, rec.Header().Get(webhook.HeaderDuplicate) == "true")
	}
	send("")                                                // first delivery
	send("")                                                // the same webhook-id again
	send("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") // a signature of something else
	// Output:
	// handled evt-1
	// 200 duplicate=false
	// 200 duplicate=true
	// 401 duplicate=false
}
