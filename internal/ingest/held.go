package ingest

import (
	"net/http"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/internal/processors"
)

type heldKeysResponse struct {
	Held []processors.HeldKeyView `json:"held"`
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
	out := heldKeysResponse{Held: []processors.HeldKeyView{}}
	for _, h := range held {
		if h.EndpointID == id {
			v := h.View()
			v.Endpoint = "" // the path names it
			out.Held = append(out.Held, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
