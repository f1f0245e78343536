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
