// Package rawjson writes JSON objects that carry another party's JSON value
// byte for byte.
//
// encoding/json re-encodes a json.RawMessage on its way out: it compacts it
// (drops whitespace) and escapes &, <, > and U+2028/U+2029. A producer's
// payload must reach its endpoint exactly as the producer sent it (receivers
// hash it, sign it, store it), so the payload is spliced into the object
// instead of being marshalled.
package rawjson

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Object marshals head, which must encode as a JSON object, and appends one
// more member, name, whose value is raw exactly as given. raw must be valid
// JSON (json.Valid); JSON whitespace around it is dropped, as it is not part
// of the value. Strings in head are written without HTML escaping.
func Object(head any, name string, raw []byte) ([]byte, error) {
	raw = bytes.Trim(raw, " \t\r\n")
	if !json.Valid(raw) {
		return nil, fmt.Errorf("member %q is not valid JSON", name)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw) + 256)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(head); err != nil {
		return nil, err
	}
	b := bytes.TrimRight(buf.Bytes(), "\n")
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, fmt.Errorf("head encodes as %.20q, not as a JSON object", b)
	}
	b = b[:len(b)-1]
	if len(b) > 1 {
		b = append(b, ',')
	}
	key, err := json.Marshal(name)
	if err != nil {
		return nil, err
	}
	b = append(b, key...)
	b = append(b, ':')
	b = append(b, raw...)
	return append(b, '}'), nil
}
