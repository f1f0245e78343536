package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errorBody is every error answer: what is wrong and, when one field is to
// blame, which (in the request's JSON spelling, "events[3].type").
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Index *int   `json:"index,omitempty"`
}

// requestError is an error answer decided while reading a request.
type requestError struct {
	status int
	field  string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, field, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do then
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, errorBody{Error: msg, Field: field})
}

func writeRequestError(w http.ResponseWriter, err *requestError) {
	writeError(w, err.status, err.msg, err.field)
}

// readBody reads the whole body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, *requestError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &requestError{http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("request body is larger than %d bytes", limit)}
		}
		return nil, badRequest("body", "read request body: %v", err)
	}
	return body, nil
}

// readBatch streams a batch body, {"events":[...]}, and returns its events
// undecoded. It stops reading at the (max+1)th event, so an oversized batch
// costs what max events cost, not what the body holds; each event is
// copied out of the decoder's buffer, so memory stays within the body.
func readBatch(r io.Reader, max int) ([]json.RawMessage, *requestError) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, streamError(err)
	}
	// Past the first token, the end of the body is the end of a truncated
	// object.
	truncated := func(err error) *requestError {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return streamError(err)
	}
	if tok != json.Delim('{') {
		return nil, badRequest("body", "must be a JSON object, not %s", tokenKind(tok))
	}
	var events []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, truncated(err)
		}
		// encoding/json matches field names case-insensitively; so
		// does this, as the batch was decoded into a struct before.
		if key, _ := tok.(string); !strings.EqualFold(key, "events") {
			return nil, badRequest(key, "unknown field")
		}
		if tok, err = dec.Token(); err != nil {
			return nil, truncated(err)
		}
		switch tok {
		case nil: // null, as for a missing field
			events = nil
			continue
		case json.Delim('['):
		default:
			return nil, badRequest("events", "must be an array, not %s", tokenKind(tok))
		}
		events = events[:0]
		for dec.More() {
			if len(events) == max {
				return nil, badRequest("events", "has more than %d events, at most %d are allowed", max, max)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, truncated(err)
			}
			events = append(events, raw)
		}
		if _, err := dec.Token(); err != nil { // ]
			return nil, truncated(err)
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return nil, truncated(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, truncated(err)
		}
		return nil, badRequest("body", "unexpected data after the JSON object")
	}
	return events, nil
}

// streamError answers an error of a streaming decoder: the body limit, or
// malformed JSON.
func streamError(err error) *requestError {
	if mb, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &requestError{http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("request body is larger than %d bytes", mb.Limit)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("body", "malformed JSON: unexpected EOF")
	}
	return jsonError(err, "")
}

// tokenKind names a JSON token's kind as encoding/json's type errors do.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "bool"
	default:
		return "null"
	}
}

// decodeStrict decodes one JSON object into v, rejecting unknown fields and
// trailing data. prefix is put before field names ("events[3].").
func decodeStrict(data []byte, v any, prefix string) *requestError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, prefix)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest(wholeField(prefix), "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error, prefix string) *requestError {
	whole := wholeField(prefix)
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return badRequest(whole, "must be a JSON object, not %s", te.Value)
		}
		return badRequest(prefix+te.Field, "must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return badRequest(prefix+name, "unknown field")
	}
	if errors.Is(err, io.EOF) {
		return badRequest(whole, "body is empty; a JSON object is required")
	}
	return badRequest(whole, "malformed JSON: %v", err)
}

// wholeField names the object itself: "body" for a request, "events[3]" for
// an event of a batch.
func wholeField(prefix string) string {
	if prefix == "" {
		return "body"
	}
	return strings.TrimSuffix(prefix, ".")
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64":
		return "an integer"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return kind
	}
}
