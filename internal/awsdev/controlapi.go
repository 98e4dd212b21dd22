package awsdev

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
	"latency":             {http.MethodPost, controlJSON(ctlLatency)},
	"fail-next":           {http.MethodPost, controlJSON(ctlFailNext)},
	"error-rate":          {http.MethodPost, controlJSON(ctlErrorRate)},
	"quota":               {http.MethodPost, controlJSON(ctlQuota)},
	"aws-quotas":          {http.MethodPost, controlJSON(ctlAWSQuotas)},
	"credential-lifetime": {http.MethodPost, controlJSON(ctlCredentialLifetime)},
	"expire-credentials":  {http.MethodPost, (*Server).ctlExpireCredentials},
	"role-policy":         {http.MethodPost, controlJSON(ctlRolePolicy)},
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
	Calls     map[string]int64            `json:"calls"`
	Regions   map[string]map[string]int64 `json:"regions"` // the same calls by the region of their scope
	Throttled map[string]int64            `json:"throttled"`
}

func (s *Server) ctlCalls([]byte) (any, error) {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	out := callsOutput{Calls: maps.Clone(s.ctl.calls), Regions: map[string]map[string]int64{}, Throttled: maps.Clone(s.ctl.throttled)}
	for region, m := range s.ctl.byRegion {
		out.Regions[region] = maps.Clone(m)
	}
	return out, nil
}

func (s *Server) ctlResetCalls([]byte) (any, error) {
	s.ResetCalls()
	return nil, nil
}

// controlJSON makes a control endpoint that decodes its body strictly
// into a T.
func controlJSON[T any](f func(*Server, T) error) func(*Server, []byte) (any, error) {
	return func(s *Server, body []byte) (any, error) {
		var in T
		if err := decodeControl(body, &in); err != nil {
			return nil, err
		}
		return nil, f(s, in)
	}
}

type latencyInput struct {
	Op       string          `json:"op"`
	Duration controlDuration `json:"duration"`
}

func ctlLatency(s *Server, in latencyInput) error {
	if in.Op == "" {
		s.SetLatency(time.Duration(in.Duration))
	} else {
		s.SetOperationLatency(in.Op, time.Duration(in.Duration))
	}
	return nil
}

type failNextInput struct {
	Op    string `json:"op"`
	N     int    `json:"n"`
	Fault string `json:"fault"`
}

func ctlFailNext(s *Server, in failNextInput) error {
	f, err := parseFault(in.Fault)
	if err != nil {
		return err
	}
	if in.Op == "" {
		return fmt.Errorf(`"op" is required (an IAM action such as "secretsmanager:GetSecretValue", or "*")`)
	}
	s.FailNext(in.Op, in.N, f)
	return nil
}

type errorRateInput struct {
	Op    string  `json:"op"`
	Rate  float64 `json:"rate"`
	Fault string  `json:"fault"`
}

func ctlErrorRate(s *Server, in errorRateInput) error {
	f, err := parseFault(in.Fault)
	if err != nil {
		return err
	}
	if in.Op == "" || in.Rate < 0 || in.Rate > 1 {
		return fmt.Errorf(`"op" is required and "rate" is between 0 and 1`)
	}
	s.SetErrorRate(in.Op, in.Rate, f)
	return nil
}

type quotaInput struct {
	Op  string  `json:"op"`
	TPS float64 `json:"tps"`
}

func ctlQuota(s *Server, in quotaInput) error {
	if in.Op == "" || in.TPS < 0 {
		return fmt.Errorf(`"op" is required and "tps" is 0 (no quota) or more`)
	}
	s.SetQuota(in.Op, in.TPS)
	return nil
}

type awsQuotasInput struct {
	CreateSessionTPS float64 `json:"createSessionTPS"`
}

func ctlAWSQuotas(s *Server, in awsQuotasInput) error {
	s.SetAWSQuotas(in.CreateSessionTPS)
	return nil
}

type lifetimeInput struct {
	Duration controlDuration `json:"duration"`
}

func ctlCredentialLifetime(s *Server, in lifetimeInput) error {
	s.SetCredentialLifetime(time.Duration(in.Duration))
	return nil
}

func (s *Server) ctlExpireCredentials([]byte) (any, error) {
	s.ExpireCredentials()
	return nil, nil
}

type rolePolicyInput struct {
	Role   string `json:"role"`
	Policy Policy `json:"policy"`
}

func ctlRolePolicy(s *Server, in rolePolicyInput) error {
	return s.SetRolePolicy(in.Role, in.Policy)
}
