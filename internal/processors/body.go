package processors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookline/hookline/envelope"
)

// WebhookBody is the request body for an event; see the package doc. It
// depends only on the event, so every retry sends the same bytes, and its
// "data" is the payload exactly as the producer sent it (JSON whitespace
// around it dropped, as rawjson.Object drops it).
//
// The members before "data" are written as an encoding/json Encoder with
// SetEscapeHTML(false) writes them, which is what rawjson.Object did here
// (TestWebhookBodyMatchesRawJSON), by appending into one buffer: this runs
// for every attempt.
func WebhookBody(ev envelope.Event) ([]byte, error) {
	data := bytes.Trim(ev.Payload, " \t\r\n")
	if !json.Valid(data) {
		return nil, fmt.Errorf("encode webhook body of event %s: member \"data\" is not valid JSON", ev.ID)
	}
	b := make([]byte, 0, len(data)+len(ev.ID)+len(ev.Type)+len(ev.Tenant)+96)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ev.ID, false)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, ev.Type, false)
	if ev.Tenant != "" {
		b = append(b, `,"tenant":`...)
		b = appendJSONString(b, ev.Tenant, false)
	}
	b = append(b, `,"timestamp":"`...)
	// RFC 3339 with nanoseconds needs no escaping.
	b = ev.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}'), nil
}
