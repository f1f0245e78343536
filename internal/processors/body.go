package processors

import (
	"fmt"
	"time"

	"github.com/hookline/hookline/envelope"
	"github.com/hookline/hookline/internal/rawjson"
)

// webhookHead is the JSON body POSTed to endpoints but its "data", the
// producer's payload, which WebhookBody writes byte for byte.
type webhookHead struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Tenant    string `json:"tenant,omitempty"`
	Timestamp string `json:"timestamp"`
}

// WebhookBody is the request body for an event; see the package doc. It
// depends only on the event, so every retry sends the same bytes, and its
// "data" is the payload exactly as the producer sent it.
func WebhookBody(ev envelope.Event) ([]byte, error) {
	b, err := rawjson.Object(webhookHead{
		ID:        ev.ID,
		Type:      ev.Type,
		Tenant:    ev.Tenant,
		Timestamp: ev.CreatedAt.UTC().Format(time.RFC3339Nano),
	}, "data", ev.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode webhook body of event %s: %w", ev.ID, err)
	}
	return b, nil
}
