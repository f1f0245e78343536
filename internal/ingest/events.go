package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/envelope"
)

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 255

// eventRequest is one event as a client posts it.
type eventRequest struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	EndpointID  string          `json:"endpoint_id"`
	Tenant      string          `json:"tenant"`
	OrderingKey string          `json:"ordering_key"`
	Payload     json.RawMessage `json:"payload"`
}

// eventResult is the answer for one accepted event: its id, which for a
// duplicate is the id of the original event.
type eventResult struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

// candidate is a validated event ready to be written, and its dedupe key
// ("" for an event with a generated id and no Idempotency-Key).
type candidate struct {
	record *kgo.Record
	id     string
	key    string
	// tenant is the tenant the event belongs to: the one it fans out to,
	// or its endpoint's. Its dedupe keys live in that tenant's namespace.
	tenant string
}

// HeaderTenant carries the tenant an event accepted by the API belongs to
// (its endpoint's, for an event sent to an endpoint), so the dedupe index
// rebuilt at startup puts its keys in the namespace they were claimed in,
// even if the endpoint has changed tenant or is gone since.
const HeaderTenant = "hookline-tenant"

func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) {
	body, rerr := readBody(w, r, s.cfg.MaxPayloadBytes+envelopeOverhead)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	c, rerr := s.prepare(r.Context(), body, "")
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if rerr := checkIdempotencyKey(key); rerr != nil {
			writeRequestError(w, rerr)
			return
		}
		c.key = idempotencyDedupeKey(c.tenant, key)
		c.record.Headers = append(c.record.Headers, kgo.RecordHeader{Key: envelope.HeaderIdempotencyKey, Value: []byte(key)})
	}
	results, err := s.accept(r.Context(), []candidate{c})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusAccepted, results[0])
}

type batchResponse struct {
	Results []eventResult `json:"results"`
}

// postBatch accepts up to MaxBatch events. Every event is validated first;
// one invalid event rejects the whole batch, naming it ("events[3].type"),
// and nothing is written. The valid batch is written in one ProduceSync.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Idempotency-Key") != "" {
		writeError(w, http.StatusBadRequest, "Idempotency-Key is not supported on batch requests; give each event an id, which is its dedupe key", "Idempotency-Key")
		return
	}
	events, rerr := readBatch(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBatchBytes)), s.cfg.MaxBatch)
	if rerr != nil {
		writeRequestError(w, rerr)
		return
	}
	if len(events) == 0 {
		writeError(w, http.StatusBadRequest, "at least one event is required", "events")
		return
	}
	cands := make([]candidate, len(events))
	for i, raw := range events {
		c, rerr := s.prepare(r.Context(), raw, fmt.Sprintf("events[%d].", i))
		if rerr != nil {
			writeJSON(w, rerr.status, errorBody{Error: rerr.msg, Field: rerr.field, Index: &i})
			return
		}
		cands[i] = c
	}
	results, err := s.accept(r.Context(), cands)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusAccepted, batchResponse{Results: results})
}

// prepare decodes and validates one event and builds its record. prefix
// names the event in a batch ("events[3].").
func (s *Server) prepare(ctx context.Context, raw []byte, prefix string) (candidate, *requestError) {
	var req eventRequest
	if rerr := decodeStrict(raw, &req, prefix); rerr != nil {
		return candidate{}, rerr
	}
	for _, f := range []struct{ name, value string }{
		{"id", req.ID}, {"type", req.Type}, {"endpoint_id", req.EndpointID}, {"tenant", req.Tenant}, {"ordering_key", req.OrderingKey},
	} {
		if rerr := checkPrintable(prefix+f.name, f.value); rerr != nil {
			return candidate{}, rerr
		}
	}
	if len(req.Payload) > s.cfg.MaxPayloadBytes {
		return candidate{}, &requestError{http.StatusRequestEntityTooLarge, prefix + "payload",
			fmt.Sprintf("payload is %d bytes, at most %d are allowed", len(req.Payload), s.cfg.MaxPayloadBytes)}
	}
	now := s.cfg.Now().UTC()
	ev := envelope.Event{
		V:           envelope.Version,
		ID:          req.ID,
		Type:        req.Type,
		EndpointID:  req.EndpointID,
		Tenant:      req.Tenant,
		OrderingKey: req.OrderingKey,
		Payload:     req.Payload,
		CreatedAt:   now,
	}
	chosenID := ev.ID != "" // a client-chosen id is a dedupe key
	if !chosenID {
		ev.ID = envelope.NewID(now)
	}
	rec, err := envelope.Record(s.cfg.EventsTopic, ev)
	if err != nil {
		if fe, ok := errors.AsType[*envelope.FieldError](err); ok {
			return candidate{}, badRequest(prefix+fe.Field, "%s", fe.Reason)
		}
		return candidate{}, badRequest(wholeField(prefix), "%v", err)
	}
	tenant := ev.Tenant
	if ev.EndpointID != "" {
		// Another tenant's endpoint is answered like a missing one, so a
		// token learns nothing of endpoints it may not use.
		ep, ok := s.cfg.Registry.Get(ev.EndpointID)
		switch {
		case !ok || !allowedTenant(ctx, ep.Tenant):
			return candidate{}, &requestError{http.StatusUnprocessableEntity, prefix + "endpoint_id", fmt.Sprintf("endpoint %q does not exist", ev.EndpointID)}
		case !ep.Enabled:
			return candidate{}, &requestError{http.StatusUnprocessableEntity, prefix + "endpoint_id", disabledMessage(ep.ID, ep.DisabledReason)}
		}
		tenant = ep.Tenant
	} else if !allowedTenant(ctx, ev.Tenant) {
		return candidate{}, &requestError{http.StatusForbidden, prefix + "tenant", fmt.Sprintf("the token may not send events for tenant %q", ev.Tenant)}
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderTenant, Value: []byte(tenant)})
	c := candidate{record: rec, id: ev.ID, tenant: tenant}
	if chosenID {
		c.key = idDedupeKey(tenant, ev.ID)
	}
	return c, nil
}

func disabledMessage(id, reason string) string {
	if reason == "" {
		return fmt.Sprintf("endpoint %q is disabled", id)
	}
	return fmt.Sprintf("endpoint %q is disabled: %s", id, reason)
}

// checkPrintable is envelope.CheckPrintable as the API's answer.
func checkPrintable(field, v string) *requestError {
	if err := envelope.CheckPrintable(field, v); err != nil {
		return badRequest(field, "%s", err.(*envelope.FieldError).Reason)
	}
	return nil
}

func checkIdempotencyKey(key string) *requestError {
	if len(key) > MaxIdempotencyKeyLen {
		return badRequest("Idempotency-Key", "is longer than %d bytes", MaxIdempotencyKeyLen)
	}
	for _, c := range []byte(key) {
		if c < 0x21 || c > 0x7e {
			return badRequest("Idempotency-Key", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// accept writes the candidates that are not duplicates in one ProduceSync
// and returns a result per candidate. A duplicate, of an earlier request or
// of an earlier candidate in the same batch, answers the original id and is
// not written. The error says why the events could not be stored; events of
// the same request that were stored stay deduplicated for a retry.
func (s *Server) accept(ctx context.Context, cands []candidate) ([]eventResult, error) {
	var keys []string
	for _, c := range cands {
		if c.key != "" {
			keys = append(keys, c.key)
		}
	}
	if s.follow != nil && len(keys) > 0 && !s.dedupe.known(keys) {
		// Another process may have stored one of the keys: read the events
		// topic up to its end before deciding the key is new.
		cctx, cancel := context.WithTimeout(ctx, s.cfg.ProduceTimeout)
		err := s.follow.catchUp(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read %s up to its end to check for duplicates: %w", s.cfg.EventsTopic, err)
		}
	}
	claim, err := s.dedupe.acquire(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("request ended while an identical request was being written: %w", err)
	}
	results := make([]eventResult, len(cands))
	first := make(map[string]int) // dedupe key -> index of its first candidate here
	var recs []*kgo.Record
	index := make(map[*kgo.Record]int, len(cands))
	for i, c := range cands {
		if c.key != "" {
			if id, ok := claim.dups[c.key]; ok {
				results[i] = eventResult{ID: id, Duplicate: true}
				continue
			}
			if j, ok := first[c.key]; ok {
				results[i] = eventResult{ID: results[j].ID, Duplicate: true}
				continue
			}
			first[c.key] = i
		}
		results[i] = eventResult{ID: c.id}
		recs = append(recs, c.record)
		index[c.record] = i
	}

	stored := make(map[string]string)
	var failed []string
	var firstErr error
	if len(recs) > 0 {
		// The write outlives the client's request: once it may have landed,
		// its outcome must reach the dedupe index.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProduceTimeout)
		defer cancel()
		for _, res := range s.cfg.Producer.ProduceSync(pctx, recs...) {
			c := cands[index[res.Record]]
			if res.Err != nil {
				failed = append(failed, c.id)
				if firstErr == nil {
					firstErr = res.Err
				}
				s.cfg.Logger.Warn("write event", "event_id", c.id, "err", res.Err)
				continue
			}
			if c.key != "" {
				stored[c.key] = c.id
			}
		}
	}
	claim.release(stored)
	if firstErr != nil {
		return nil, fmt.Errorf("%d of %d events were not stored (%s): %w", len(failed), len(recs), strings.Join(failed, ", "), firstErr)
	}
	return results, nil
}
