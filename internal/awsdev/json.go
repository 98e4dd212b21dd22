package awsdev

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// decodeJSON decodes a JSON 1.1 request body; an empty body is {}.
func decodeJSON(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(http.StatusBadRequest, "SerializationException", "the request body is not valid JSON for this operation")
	}
	return nil
}

// jsonOp makes a JSON 1.1 operation: it decodes the body into a T and
// runs f in the request's region with the data lock held.
func jsonOp[T any](f func(*Region, *call, *T) (any, *apiError)) handler {
	return func(s *Server, c *call) (any, *apiError) {
		in := new(T)
		if aerr := decodeJSON(c.body, in); aerr != nil {
			return nil, aerr
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return f(c.reg, c, in)
	}
}

// epoch is a timestamp as JSON 1.1 services write it: seconds since the
// epoch, with milliseconds.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

// epochPtr returns nil for the zero time, so omitempty drops it.
func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// pageStart parses a NextToken made by pageToken; "" is the first page.
func pageStart(token string, n int) (int, bool) {
	if token == "" {
		return 0, true
	}
	i, err := strconv.Atoi(token)
	return i, err == nil && i >= 0 && i <= n
}

func pageToken(next, n int) string {
	if next >= n {
		return ""
	}
	return strconv.Itoa(next)
}
