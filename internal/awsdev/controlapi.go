package awsdev

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The control API drives the test controls over HTTP, for `rolesenv dev`
// users with curl. It is unauthenticated, like the rest of the emulator's
// administration: the emulator is a loopback test tool. The package doc
// lists every endpoint with an example.

type controlHandler struct {
	method string
	serve  func(s *Server, body []byte) (any, error)
}

var controlHandlers = map[string]controlHandler{
	"calls":               {http.MethodGet, (*Server).ctlCalls},
	"calls/reset":         {http.MethodPost, (*Server).ctlResetCalls},
	"latency":             {http.MethodPost, (*Server).ctlLatency},
	"fail-next":           {http.MethodPost, (*Server).ctlFailNext},
	"error-rate":          {http.MethodPost, (*Server).ctlErrorRate},
	"quota":               {http.MethodPost, (*Server).ctlQuota},
	"aws-quotas":          {http.MethodPost, (*Server).ctlAWSQuotas},
	"credential-lifetime": {http.MethodPost, (*Server).ctlCredentialLifetime},
	"expire-credentials":  {http.MethodPost, (*Server).ctlExpireCredentials},
	"role-policy":         {http.MethodPost, (*Server).ctlRolePolicy},
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, controlPrefix), "/")
	h, ok := controlHandlers[name]
	if !ok {
		writeControl(w, http.StatusNotFound, map[string]string{"error": "no control endpoint " + r.URL.Path + "; see the package documentation of internal/awsdev"})
		return
	}
	if r.Method != h.method {
		writeControl(w, http.StatusMethodNotAllowed, map[string]string{"error": controlPrefix + name + " takes " + h.method})
		return
	}
	body, err := readLimited(r, 1<<16)
	if err != nil {
		writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	out, err := h.serve(s, body)
	if err != nil {
		writeControl(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if out == nil {
		out = map[string]bool{"ok": true}
	}
	writeControl(w, http.StatusOK, out)
}

func readLimited(r *http.Request, n int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > n {
		return nil, fmt.Errorf("request body larger than %d bytes", n)
	}
	return body, nil
}

func writeControl(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decodeControl decodes a control request body strictly, so that a typo in
// a field name is an error rather than a silent no-op.
func decodeControl(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	return nil
}

// controlDuration is a Go duration string ("250ms", "1m").
type controlDuration time.Duration

func (d *controlDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"250ms\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = controlDuration(v)
	return nil
}

func parseFault(name string) (Fault, error) {
	switch name {
	case "internal":
		return FaultInternal, nil
	case "throttle":
		return FaultThrottle, nil
	case "unavailable":
		return FaultUnavailable, nil
	case "reset":
		return FaultReset, nil
	}
	return 0, fmt.Errorf("unknown fault %q (internal, throttle, unavailable, reset)", name)
}

type callsOutput struct {
	Calls     map[string]int64 `json:"calls"`
	Throttled map[string]int64 `json:"throttled"`
}

func (s *Server) ctlCalls([]byte) (any, error) {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	out := callsOutput{Calls: map[string]int64{}, Throttled: map[string]int64{}}
	for k, v := range s.ctl.calls {
		out.Calls[k] = v
	}
	for k, v := range s.ctl.throttled {
		out.Throttled[k] = v
	}
	return out, nil
}

func (s *Server) ctlResetCalls([]byte) (any, error) {
	s.ResetCalls()
	return nil, nil
}

func (s *Server) ctlLatency(body []byte) (any, error) {
	var in struct {
		Op       string          `json:"op"`
		Duration controlDuration `json:"duration"`
	}
	if err := decodeControl(body, &in); err != nil {
		return nil, err
	}
	if in.Op == "" {
		s.SetLatency(time.Duration(in.Duration))
	} else {
		s.SetOperationLatency(in.Op, time.Duration(in.Duration))
	}
	return nil, nil
}

func (s *Server) ctlFailNext(body []byte) (any, error) {
	var in struct {
		Op    string `json:"op"`
		N     int    `json:"n"`
		Fault string `json:"fault"`
	}
	if err := decodeControl(body, &in); err != nil {
		return nil, err
	}
	f, err := parseFault(in.Fault)
	if err != nil {
		return nil, err
	}
	if in.Op == "" {
		return nil, fmt.Errorf(`"op" is required (an IAM action such as "secretsmanager:GetSecretValue", or "*")`)
	}
	s.FailNext(in.Op, in.N, f)
	return nil, nil
}

func (s *Server) ctlErrorRate(body []byte) (any, error) {
	var in struct {
		Op    string  `json:"op"`
		Rate  float64 `json:"rate"`
		Fault string  `json:"fault"`
	}
	if err := decodeControl(body, &in); err != nil {
		return nil, err
	}
	f, err := parseFault(in.Fault)
	if err != nil {
		return nil, err
	}
	if in.Op == "" || in.Rate < 0 || in.Rate > 1 {
		return nil, fmt.Errorf(`"op" is required and "rate" is between 0 and 1`)
	}
	s.SetErrorRate(in.Op, in.Rate, f)
	return nil, nil
}

func (s *Server) ctlQuota(body []byte) (any, error) {
	var in struct {
		Op  string  `json:"op"`
		TPS float64 `json:"tps"`
	}
	if err := decodeControl(body, &in); err != nil {
		return nil, err
	}
	if in.Op == "" || in.TPS < 0 {
		return nil, fmt.Errorf(`"op" is required and "tps" is 0 (no quota) or more`)
	}
	s.SetQuota(in.Op, in.TPS)
	return nil, nil
}

func (s *Server) ctlAWSQuotas(body []byte) (any, error) {
	var in struct {
		CreateSessionTPS float64 `json:"createSessionTPS"`
	}
	if err := decodeControl(body, &in); err != nil {
		return nil, err
	}
	s.SetAWSQuotas(in.CreateSessionTPS)
	return nil, nil
}

func (s *Server) ctlCredentialLifetime(body []byte) (any, error) {
	var in struct {
		Duration controlDuration `json:"duration"`
	}
	if err := decodeControl(body, &in); err != nil {
		return nil, err
	}
	s.SetCredentialLifetime(time.Duration(in.Duration))
	return nil, nil
}

func (s *Server) ctlExpireCredentials([]byte) (any, error) {
	s.ExpireCredentials()
	return nil, nil
}

func (s *Server) ctlRolePolicy(body []byte) (any, error) {
	var in struct {
		Role   string `json:"role"`
		Policy Policy `json:"policy"`
	}
	if err := decodeControl(body, &in); err != nil {
		return nil, err
	}
	return nil, s.SetRolePolicy(in.Role, in.Policy)
}
