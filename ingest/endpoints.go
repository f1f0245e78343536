package ingest

import (
	"errors"
	"net/http"

	"github.com/hookline/hookline/endpoints"
)

// createEndpointRequest is the body of POST /v1/endpoints.
type createEndpointRequest struct {
	ID         string   `json:"id"`
	URL        string   `json:"url"`
	Secret     string   `json:"secret"`
	Tenant     string   `json:"tenant"`
	EventTypes []string `json:"event_types"`
	TimeoutMS  int      `json:"timeout_ms"`
}

// patchEndpointRequest is the body of PATCH /v1/endpoints/{id}: only the
// fields present change.
type patchEndpointRequest struct {
	URL            *string   `json:"url"`
	Tenant         *string   `json:"tenant"`
	EventTypes     *[]string `json:"event_types"`
	TimeoutMS      *int      `json:"timeout_ms"`
	Enabled        *bool     `json:"enabled"`
	DisabledReason *string   `json:"disabled_reason"`
	Secrets        *[]string `json:"secrets"`
}

type listEndpointsResponse struct {
	Endpoints []endpoints.Endpoint `json:"endpoints"`
}

// createEndpoint answers 201 with the endpoint, the only answer that shows
// its secret in full.
func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	body, rerr := readBody(w, r, envelopeOverhead)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	var req createEndpointRequest
	if rerr := decodeStrict(body, &req, ""); rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	e := endpoints.Endpoint{
		ID:         req.ID,
		URL:        req.URL,
		Tenant:     req.Tenant,
		EventTypes: req.EventTypes,
		TimeoutMS:  req.TimeoutMS,
		Enabled:    true,
	}
	if e.ID == "" {
		e.ID = endpoints.GenerateID()
	}
	e.Secrets = []string{req.Secret}
	if req.Secret == "" {
		secret, err := endpoints.GenerateSecret()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error(), "")
			return
		}
		e.Secrets = []string{secret}
	}
	if err := s.cfg.Registry.Create(r.Context(), e); err != nil {
		s.writeRegistryError(w, err, map[string]string{"secrets": "secret", "secrets[0]": "secret"})
		return
	}
	created, _ := s.cfg.Registry.Get(e.ID)
	w.Header().Set("Location", "/v1/endpoints/"+e.ID)
	writeJSON(w, http.StatusCreated, created)
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	all := s.cfg.Registry.List()
	for i, e := range all {
		all[i] = e.Masked()
	}
	writeJSON(w, http.StatusOK, listEndpointsResponse{Endpoints: all})
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request) {
	e, ok := s.cfg.Registry.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, endpoints.ErrNotFound.Error(), "id")
		return
	}
	writeJSON(w, http.StatusOK, e.Masked())
}

func (s *Server) patchEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, rerr := readBody(w, r, envelopeOverhead)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	var req patchEndpointRequest
	if rerr := decodeStrict(body, &req, ""); rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	err := s.cfg.Registry.Update(r.Context(), id, func(e *endpoints.Endpoint) error {
		if req.URL != nil {
			e.URL = *req.URL
		}
		if req.Tenant != nil {
			e.Tenant = *req.Tenant
		}
		if req.EventTypes != nil {
			e.EventTypes = *req.EventTypes
		}
		if req.TimeoutMS != nil {
			e.TimeoutMS = *req.TimeoutMS
		}
		if req.Secrets != nil {
			e.Secrets = *req.Secrets
		}
		if req.Enabled != nil {
			e.Enabled = *req.Enabled
			e.DisabledReason = ""
			if !e.Enabled {
				e.DisabledReason = "disabled through the API"
			}
		}
		if req.DisabledReason != nil && !e.Enabled {
			e.DisabledReason = *req.DisabledReason
		}
		return nil
	})
	if err != nil {
		s.writeRegistryError(w, err, nil)
		return
	}
	e, _ := s.cfg.Registry.Get(id)
	writeJSON(w, http.StatusOK, e.Masked())
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Registry.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.writeRegistryError(w, err, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeRegistryError answers a registry error; rename maps the registry's
// field names to the request's where they differ.
func (s *Server) writeRegistryError(w http.ResponseWriter, err error, rename map[string]string) {
	if fe, ok := errors.AsType[*endpoints.FieldError](err); ok {
		field := fe.Field
		if to, ok := rename[field]; ok {
			field = to
		}
		writeError(w, http.StatusBadRequest, fe.Reason, field)
		return
	}
	switch {
	case errors.Is(err, endpoints.ErrNotFound):
		writeError(w, http.StatusNotFound, endpoints.ErrNotFound.Error(), "id")
	case errors.Is(err, endpoints.ErrExists):
		writeError(w, http.StatusConflict, endpoints.ErrExists.Error(), "id")
	default:
		s.cfg.Logger.Warn("write endpoint", "err", err)
		writeError(w, http.StatusServiceUnavailable, "endpoint not stored: "+err.Error(), "")
	}
}
