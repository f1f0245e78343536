package ingest

import (
	"net/http"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

// heldKeyView is one held key of a strict endpoint, as
// GET /v1/endpoints/{id}/held shows it.
type heldKeyView struct {
	OrderingKey string    `json:"ordering_key"`
	Partition   int32     `json:"partition"`
	EventID     string    `json:"event_id"`
	Since       time.Time `json:"since"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	// State is "retrying", or "dead" (on_dead_letter hold: waiting for
	// hookline dlq replay or skip), "replay" or "skip" (released).
	State string `json:"state"`
}

type heldKeysResponse struct {
	Held []heldKeyView `json:"held"`
}

// heldKeys answers the keys of an endpoint held by an event that failed
// (strict ordering), oldest hold first.
func (s *Server) heldKeys(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.visible(r, id); !ok {
		writeError(w, http.StatusNotFound, endpoints.ErrNotFound.Error(), "id")
		return
	}
	if s.cfg.Held == nil {
		writeError(w, http.StatusNotImplemented, "this server does not read held keys", "")
		return
	}
	held, err := s.cfg.Held(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "read held keys: "+err.Error(), "")
		return
	}
	out := heldKeysResponse{Held: []heldKeyView{}}
	for _, h := range held {
		if h.EndpointID == id {
			out.Held = append(out.Held, heldKeyView{OrderingKey: string(h.OrderingKey), Partition: h.Partition, EventID: h.EventID,
				Since: h.Since, Attempts: h.Attempts, NextAttempt: h.Due, LastError: h.LastError, State: h.StateName()})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
