package fcverify

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// object is one JSON object, member name → raw value.
type object map[string]json.RawMessage

var errNotObject = errors.New("not a single json object without duplicate members")

// decodeObject parses data as exactly one JSON object. It refuses duplicate
// member names, including names that differ only by letter case, because
// parsers disagree on which duplicate wins (and encoding/json matches struct
// fields case-insensitively). Values are kept raw and read with exact names.
func decodeObject(data []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotObject
	}
	obj := object{}
	folded := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errNotObject
		}
		name, ok := t.(string)
		if !ok {
			return nil, errNotObject
		}
		lower := strings.ToLower(name)
		if folded[lower] {
			return nil, errNotObject
		}
		folded[lower] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errNotObject
		}
		obj[name] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotObject
	}
	return obj, nil
}

func (o object) has(name string) bool {
	_, ok := o[name]
	return ok
}

// str reads a member that must be a JSON string. ok is false when it is
// absent; err is set when it is present with another type (null included).
func (o object) str(name string) (s string, ok bool, err error) {
	raw, ok := o[name]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", true, errors.New("not a string")
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, err
	}
	return s, true, nil
}

// obj reads a member that must be a JSON object.
func (o object) obj(name string) (object, bool, error) {
	raw, ok := o[name]
	if !ok {
		return nil, false, nil
	}
	sub, err := decodeObject(raw)
	return sub, true, err
}
