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
func extract(val string, key, pointer string) (string, error) {
	if key == "" && pointer == "" {
		return val, nil
	}
	raw := json.RawMessage(val)
	if key != "" {
		obj, ok := asObject(raw)
		if !ok {
			return "", errors.New("the value is not a JSON object, so it has no key " + strconv.Quote(key))
		}
		v, ok := obj[key]
		if !ok {
			return "", errors.New("JSON key " + strconv.Quote(key) + " not found")
		}
		return jsonText(v)
	}
	if !json.Valid(raw) {
		return "", errors.New("the value is not JSON, so the JSON Pointer " + strconv.Quote(pointer) + " does not apply")
	}
	for i, tok := range strings.Split(pointer[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		where := "JSON Pointer " + strconv.Quote(pointer) + ": token " + strconv.Itoa(i+1)
		if obj, ok := asObject(raw); ok {
			v, ok := obj[tok]
			if !ok {
				return "", errors.New(where + " not found")
			}
			raw = v
			continue
		}
		if arr, ok := asArray(raw); ok {
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || (len(tok) > 1 && tok[0] == '0') || tok[0] == '+' {
				return "", errors.New(where + " is not an array index")
			}
			if n >= len(arr) {
				return "", errors.New(where + " is past the end of the array")
			}
			raw = arr[n]
			continue
		}
		return "", errors.New(where + " goes into a value that is neither an object nor an array")
	}
	return jsonText(raw)
}

func asObject(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
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
