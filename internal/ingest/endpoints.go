package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
)

// createEndpointRequest is the body of POST /v1/endpoints.
type createEndpointRequest struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Secret string `json:"secret"`
	// Scheme of a generated secret: v1 (HMAC, default) or v1a (ed25519).
	Scheme     string   `json:"scheme"`
	Tenant     string   `json:"tenant"`
	EventTypes []string `json:"event_types"`
	TimeoutMS  int      `json:"timeout_ms"`
	// Ordering is "best_effort" (default) or "strict"; OnDeadLetter
	// "continue" (default).
	Ordering     string `json:"ordering"`
	OnDeadLetter string `json:"on_dead_letter"`
	// ClientCertPEM and ClientKeyPEM are an optional client certificate
	// and key for endpoints that require mutual TLS.
	ClientCertPEM string `json:"client_cert_pem"`
	ClientKeyPEM  string `json:"client_key_pem"`
	// Endpoint protection; see endpoints.Endpoint.
	Headers      map[string]string `json:"headers"`
	RateLimit    int               `json:"rate_limit"`
	MaxInFlight  int               `json:"max_in_flight"`
	DisableAfter string            `json:"disable_after"`
}

// endpointBodyLimit bounds an endpoint request: room for a client
// certificate chain and key besides the other fields.
const endpointBodyLimit = envelopeOverhead + 2*endpoints.MaxClientPEMLen

// patchEndpointRequest is the body of PATCH /v1/endpoints/{id}: only the
// fields present change.
type patchEndpointRequest struct {
	URL            *string   `json:"url"`
	Tenant         *string   `json:"tenant"`
	EventTypes     *[]string `json:"event_types"`
	TimeoutMS      *int      `json:"timeout_ms"`
	Ordering       *string   `json:"ordering"`
	OnDeadLetter   *string   `json:"on_dead_letter"`
	Enabled        *bool     `json:"enabled"`
	DisabledReason *string   `json:"disabled_reason"`
	Secrets        *[]string `json:"secrets"`
	// ClientCertPEM and ClientKeyPEM replace the client certificate; both
	// empty removes it.
	ClientCertPEM *string `json:"client_cert_pem"`
	ClientKeyPEM  *string `json:"client_key_pem"`
	// Headers replaces the custom headers; {} removes them.
	Headers      *map[string]string `json:"headers"`
	RateLimit    *int               `json:"rate_limit"`
	MaxInFlight  *int               `json:"max_in_flight"`
	DisableAfter *string            `json:"disable_after"`
}

// rotateSecretRequest is the body of POST /v1/endpoints/{id}/rotate-secret.
type rotateSecretRequest struct {
	// Overlap is how long the replaced secrets keep signing, a Go duration;
	// default endpoints.DefaultRotationOverlap.
	Overlap string `json:"overlap"`
	// Scheme of a generated secret; default that of the current secret.
	Scheme string `json:"scheme"`
	// Secret is the new secret; default generated.
	Secret string `json:"secret"`
}

// endpointView is an endpoint as the API shows it: with the public keys of
// its v1a signing keys, which its receivers verify with.
type endpointView struct {
	endpoints.Endpoint
	PublicKeys []string `json:"public_keys,omitempty"`
	// ClientCertSHA256 is the fingerprint of the client certificate.
	ClientCertSHA256 string `json:"client_cert_sha256,omitempty"`
}

func view(e endpoints.Endpoint, mask bool) endpointView {
	v := endpointView{Endpoint: e, PublicKeys: e.PublicKeys(), ClientCertSHA256: e.ClientCertSHA256()}
	if mask {
		v.Endpoint = e.Masked()
	}
	// The caller gave the key; no answer needs to send it back.
	v.ClientKeyPEM = endpoints.MaskKey(e.ClientKeyPEM)
	return v
}

type listEndpointsResponse struct {
	Endpoints []endpointView `json:"endpoints"`
}

// createEndpoint answers 201 with the endpoint, the only answer that shows
// its secret in full.
func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	body, rerr := readBody(w, r, endpointBodyLimit)
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

		Ordering:     req.Ordering,
		OnDeadLetter: req.OnDeadLetter,

		ClientCertPEM: req.ClientCertPEM,
		ClientKeyPEM:  req.ClientKeyPEM,

		Headers:      req.Headers,
		RateLimit:    req.RateLimit,
		MaxInFlight:  req.MaxInFlight,
		DisableAfter: req.DisableAfter,
	}
	if !allowedTenant(r.Context(), e.Tenant) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("the token may not manage endpoints of tenant %q", e.Tenant), "tenant")
		return
	}
	// Endpoint ids are global. A tenant's token names ids in its own
	// namespace only, so that trying an id never tells it whether another
	// tenant holds it.
	switch prefix := endpoints.TenantIDPrefix(e.Tenant); {
	case e.ID == "" && tenantScoped(r.Context()):
		e.ID = prefix + endpoints.GenerateID()
	case e.ID == "":
		e.ID = endpoints.GenerateID()
	case tenantScoped(r.Context()) && !strings.HasPrefix(e.ID, prefix):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("a tenant's token creates endpoint ids that start with %q", prefix), "id")
		return
	}
	if err := s.cfg.Destinations.CheckURL(e.URL); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "url")
		return
	}
	if req.Secret != "" {
		e.Secrets = []string{req.Secret}
	}
	created, err := endpoints.Create(r.Context(), s.cfg.Registry, e, req.Scheme)
	if err != nil {
		s.writeRegistryError(w, err, map[string]string{"secrets": "secret", "secrets[0]": "secret"})
		return
	}
	w.Header().Set("Location", "/v1/endpoints/"+e.ID)
	writeJSON(w, http.StatusCreated, view(created, false))
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	all := s.cfg.Registry.List()
	out := make([]endpointView, 0, len(all))
	for _, e := range all {
		if allowedTenant(r.Context(), e.Tenant) {
			out = append(out, view(e, true))
		}
	}
	writeJSON(w, http.StatusOK, listEndpointsResponse{Endpoints: out})
}

// rotateSecret makes a new secret current; the replaced ones keep signing
// for the overlap. It answers with the new secret in full, the only time it
// is shown.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, rerr := readBody(w, r, endpointBodyLimit)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	req := rotateSecretRequest{}
	if len(body) > 0 {
		if rerr := decodeStrict(body, &req, ""); rerr != nil {
			writeRequestError(w, rerr)
			return
		}
	}
	if _, ok := s.visible(r, id); !ok {
		writeError(w, http.StatusNotFound, endpoints.ErrNotFound.Error(), "id")
		return
	}
	overlap := endpoints.DefaultRotationOverlap
	if req.Overlap != "" {
		d, err := time.ParseDuration(req.Overlap)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, "must be a non-negative Go duration such as 24h", "overlap")
			return
		}
		overlap = d
	}
	e, fresh, err := endpoints.RotateSecret(r.Context(), s.cfg.Registry, id, req.Secret, req.Scheme, overlap, s.cfg.Now().UTC())
	if err != nil {
		s.writeRegistryError(w, err, map[string]string{"secrets[0]": "secret"})
		return
	}
	v := view(e, true)
	v.Secrets = []string{fresh}
	writeJSON(w, http.StatusOK, v)
}

// visible reports whether the endpoint exists for the request's token: one
// of another tenant looks like one that does not exist.
func (s *Server) visible(r *http.Request, id string) (endpoints.Endpoint, bool) {
	e, ok := s.cfg.Registry.Get(id)
	if !ok || !allowedTenant(r.Context(), e.Tenant) {
		return endpoints.Endpoint{}, false
	}
	return e, true
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request) {
	e, ok := s.visible(r, r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, endpoints.ErrNotFound.Error(), "id")
		return
	}
	writeJSON(w, http.StatusOK, view(e, true))
}

func (s *Server) patchEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, rerr := readBody(w, r, endpointBodyLimit)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	var req patchEndpointRequest
	if rerr := decodeStrict(body, &req, ""); rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	if _, ok := s.visible(r, id); !ok {
		writeError(w, http.StatusNotFound, endpoints.ErrNotFound.Error(), "id")
		return
	}
	if req.Tenant != nil && !allowedTenant(r.Context(), *req.Tenant) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("the token may not manage endpoints of tenant %q", *req.Tenant), "tenant")
		return
	}
	if req.URL != nil {
		if err := s.cfg.Destinations.CheckURL(*req.URL); err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), "url")
			return
		}
	}
	err := s.cfg.Registry.Update(r.Context(), id, func(e *endpoints.Endpoint) error {
		patch(&e.URL, req.URL)
		patch(&e.Tenant, req.Tenant)
		patch(&e.EventTypes, req.EventTypes)
		patch(&e.TimeoutMS, req.TimeoutMS)
		patch(&e.Ordering, req.Ordering)
		patch(&e.OnDeadLetter, req.OnDeadLetter)
		patch(&e.Secrets, req.Secrets)
		patch(&e.ClientCertPEM, req.ClientCertPEM)
		patch(&e.ClientKeyPEM, req.ClientKeyPEM)
		patch(&e.Headers, req.Headers)
		patch(&e.RateLimit, req.RateLimit)
		patch(&e.MaxInFlight, req.MaxInFlight)
		patch(&e.DisableAfter, req.DisableAfter)
		reason := "disabled through the API"
		if req.DisabledReason != nil {
			reason = *req.DisabledReason
		}
		switch {
		case req.Enabled != nil && *req.Enabled:
			e.Enable()
		case req.Enabled != nil, req.DisabledReason != nil && !e.Enabled:
			e.Disable(reason)
		}
		return nil
	})
	if err != nil {
		s.writeRegistryError(w, err, nil)
		return
	}
	e, _ := s.cfg.Registry.Get(id)
	writeJSON(w, http.StatusOK, view(e, true))
}

// patch sets *dst to *v when the PATCH body gave the field.
func patch[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.visible(r, r.PathValue("id")); !ok {
		writeError(w, http.StatusNotFound, endpoints.ErrNotFound.Error(), "id")
		return
	}
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
