package inject

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// filters are applied left to right to a resolved value inside {{ }}.
var filters = map[string]func(string) (string, error){
	"urlquery":     urlQuery,
	"base64":       func(s string) (string, error) { return base64.StdEncoding.EncodeToString([]byte(s)), nil },
	"base64decode": base64Decode,
	"json":         jsonEscape,
	"trim":         func(s string) (string, error) { return strings.TrimSpace(s), nil },
}

// urlQuery percent-encodes every byte outside the RFC 3986 unreserved
// set, so the result is safe in userinfo, path and query alike.
func urlQuery(s string) (string, error) {
	return percentEncode(s, func(c byte) bool { return c == '-' || c == '.' || c == '_' || c == '~' }), nil
}

// base64Decode accepts standard base64 with or without padding, ignoring
// line breaks (PEM-style wrapping).
func base64Decode(s string) (string, error) {
	s = strings.NewReplacer("\n", "", "\r", "").Replace(strings.TrimSpace(s))
	out, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		out, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return "", errors.New("base64decode: the value is not valid base64")
	}
	return string(out), nil
}

// jsonEscape escapes s as the inside of a JSON string (no surrounding
// quotes, no HTML escaping).
func jsonEscape(s string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", errors.New("json: the value cannot be encoded")
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1]), nil
}

// extract applies a reference's JSON key or pointer to a value. Errors
// never quote the value (encoding/json's messages do, so they are not
// passed on).
//
// JSON leaves the meaning of a name given twice in one object undefined,
// and readers differ on which one wins, so every object the key or the
// pointer reads a member of must name each member once: a duplicate (by
// its decoded name, so "a" and "\u0061" are the same) is an error naming
// its path, never a value. What the key or pointer selects, and a whole
// value referenced without one, is passed on as written, duplicates
// included: the application's own JSON reader then decides, as it would
// reading the secret itself.
func extract(val string, key, pointer string) (string, error) {
	if key == "" && pointer == "" {
		return val, nil
	}
	raw := json.RawMessage(val)
	if key != "" {
		return extractKey(raw, key)
	}
	return extractPointer(raw, pointer)
}

func extractKey(raw json.RawMessage, key string) (string, error) {
	if !json.Valid(raw) {
		return "", errors.New("the value is not a JSON object, so it has no key " + strconv.Quote(key))
	}
	obj, ok, err := members(raw, "", key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errors.New("the value is not a JSON object, so it has no key " + strconv.Quote(key))
	}
	v, ok := obj[key]
	if !ok {
		return "", errors.New("JSON key " + strconv.Quote(key) + " not found")
	}
	return jsonText(v)
}

func extractPointer(raw json.RawMessage, pointer string) (string, error) {
	if !json.Valid(raw) {
		return "", errors.New("the value is not JSON, so the JSON Pointer " + strconv.Quote(pointer) + " does not apply")
	}
	path := ""
	for i, tok := range strings.Split(pointer[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		where := "JSON Pointer " + strconv.Quote(pointer) + ": token " + strconv.Itoa(i+1)
		next, err := pointerStep(raw, path, tok, where)
		if err != nil {
			return "", err
		}
		raw, path = next, path+"/"+pointerToken(tok)
	}
	return jsonText(raw)
}

// pointerStep applies one JSON Pointer token to raw, the valid JSON value
// at path; where names the token in errors.
func pointerStep(raw json.RawMessage, path, tok, where string) (json.RawMessage, error) {
	obj, ok, err := members(raw, path, tok)
	if err != nil {
		return nil, err
	}
	if ok {
		v, ok := obj[tok]
		if !ok {
			return nil, errors.New(where + " not found")
		}
		return v, nil
	}
	if arr, ok := asArray(raw); ok {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || (len(tok) > 1 && tok[0] == '0') || tok[0] == '+' {
			return nil, errors.New(where + " is not an array index")
		}
		if n >= len(arr) {
			return nil, errors.New(where + " is past the end of the array")
		}
		return arr[n], nil
	}
	return nil, errors.New(where + " goes into a value that is neither an object nor an array")
}

// members decodes raw, valid JSON, into an object's members; ok is false
// for any other JSON value. A member name given twice is an error, which
// names the member only when it is want (path is the object's own, as a
// JSON Pointer).
func members(raw json.RawMessage, path, want string) (m map[string]json.RawMessage, ok bool, err error) {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, false, nil
	}
	m = map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		name, isName := tok.(string)
		var v json.RawMessage
		if err != nil || !isName || dec.Decode(&v) != nil {
			return nil, false, nil
		}
		if _, dup := m[name]; dup {
			return nil, true, duplicateError(path, name, want)
		}
		m[name] = v
	}
	return m, true, nil
}

// duplicateError names the duplicate only when it is the member asked
// for (want): in a secret used as a lookup table, the other member names
// are secret data too.
func duplicateError(path, name, want string) error {
	const why = " (JSON leaves which one counts undefined, and readers differ)"
	if name == want {
		return errors.New("the JSON names the key " + strconv.Quote(path+"/"+pointerToken(name)) + " twice" + why + "; neither is used")
	}
	where := "the JSON object at " + strconv.Quote(path)
	if path == "" {
		where = "the top-level JSON object"
	}
	return errors.New(where + " names a member twice" + why + "; no key is read from it")
}

func asArray(raw json.RawMessage) ([]json.RawMessage, bool) {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) != nil {
		return nil, false
	}
	return a, true
}

// jsonText is a JSON string's contents, or any other JSON value's compact
// text.
func jsonText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", errors.New("invalid JSON string")
		}
		return s, nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return "", errors.New("invalid JSON")
	}
	return b.String(), nil
}
