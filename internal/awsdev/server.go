package awsdev

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxBody bounds a request body: a 64 KiB SecretBinary is about 88 KiB of
// base64 in JSON, and nothing the emulator serves needs more.
const maxBody = 1 << 20

// controlPrefix is the path prefix of the control API (controlapi.go).
const controlPrefix = "/_awsdev/"

// call is one request on its way through the emulator.
type call struct {
	r         *http.Request
	body      []byte
	service   string // "secretsmanager", "ssm", "sts", "rolesanywhere"
	name      string // the operation, e.g. "GetSecretValue"
	op        string // the IAM action, e.g. "secretsmanager:GetSecretValue"
	proto     protocol
	requestID string
	form      url.Values // query protocol parameters (STS)
	who       *principal // set once the request is authenticated
}

type handler func(s *Server, c *call) (any, *apiError)

// handlers maps IAM action names to operations.
var handlers = map[string]handler{}

func register(op string, h handler) { handlers[op] = h }

// Start listens and serves until Close.
func Start(opts Options) (*Server, error) {
	s := newServer(opts)
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	scheme := "http"
	if !opts.HTTP {
		cfg, err := s.tlsConfig(opts, ln.Addr())
		if err != nil {
			ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, cfg)
		scheme = "https"
	}
	s.ln = ln
	s.url = scheme + "://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          nil,
		// HTTP/1.1 only, as the AWS endpoints the clients talk to; it also
		// lets FaultReset drop a connection.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("awsdev: serve failed", "err", err)
		}
	}()
	s.log.Debug("awsdev: listening", "url", s.url)
	return s, nil
}

func newServer(opts Options) *Server {
	s := &Server{
		region:    opts.Region,
		accountID: opts.AccountID,
		now:       opts.Now,
		log:       opts.Logger,
		closing:   make(chan struct{}),
		served:    make(chan struct{}),
		users:     map[string]*user{},
		keys:      map[string]*accessKey{},
		roles:     map[string]*role{},
		sessions:  map[string]*session{},
		anchors:   map[string]*trustAnchor{},
		profiles:  map[string]*profile{},
		secrets:   map[string]*secret{},
		params:    map[string]*parameter{},
		subjects:  map[string]string{},
		ctl:       newControls(),
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.accountID == "" {
		s.accountID = "123456789012"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// URL is the base URL clients use as their endpoint, e.g. "https://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// CAPEM is the PEM CA certificate that signed the TLS certificate (nil with HTTP).
// Clients trust it through AWS_CA_BUNDLE.
func (s *Server) CAPEM() []byte { return s.caPEM }

// CAKeyPEM is the PEM key of CAPEM, so `rolesenv dev` can keep it across restarts.
func (s *Server) CAKeyPEM() []byte { return s.caKeyPEM }

// Region and AccountID are the ones the server was started with.
func (s *Server) Region() string    { return s.region }
func (s *Server) AccountID() string { return s.accountID }

// Close stops the listener and waits for in-flight requests.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	err := s.srv.Shutdown(context.Background())
	<-s.served
	return err
}

// ServeHTTP routes a request as AWS does, applies the test controls, then
// authenticates and runs the operation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		s.serveControl(w, r)
		return
	}
	start := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	c := &call{r: r, body: body, requestID: newUUID()}
	w.Header().Set("X-Amzn-RequestId", c.requestID)
	// The Date of answers is the emulator's clock: SDKs correct their
	// clock skew from it, as they do with AWS.
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	if aerr := route(c); aerr != nil {
		writeError(w, c.proto, c.requestID, aerr)
		s.logCall(c, aerr.status, start)
		return
	}
	s.ctl.count(c.op)
	if !s.ctl.delay(r.Context(), s.closing, c.op) {
		return
	}
	if f := s.ctl.fault(c.op); f != 0 {
		if f == FaultReset {
			s.logCall(c, 0, start)
			panic(http.ErrAbortHandler)
		}
		aerr := faultError(c.service, f)
		writeError(w, c.proto, c.requestID, aerr)
		s.logCall(c, aerr.status, start)
		return
	}
	if !s.ctl.allow(c.op, s.now()) {
		aerr := faultError(c.service, FaultThrottle)
		writeError(w, c.proto, c.requestID, aerr)
		s.logCall(c, aerr.status, start)
		return
	}
	status, aerr := s.serveCall(w, c)
	if aerr != nil {
		writeError(w, c.proto, c.requestID, aerr)
		status = aerr.status
	}
	s.logCall(c, status, start)
}

func (s *Server) serveCall(w http.ResponseWriter, c *call) (int, *apiError) {
	if len(c.body) > maxBody {
		return 0, errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request body larger than %d bytes", maxBody)
	}
	if c.service != "rolesanywhere" {
		who, aerr := s.authenticate(c)
		if aerr != nil {
			return 0, aerr
		}
		c.who = who
	}
	h := handlers[c.op]
	if h == nil {
		return 0, unknownOperation(c)
	}
	out, aerr := h(s, c)
	if aerr != nil {
		return 0, aerr
	}
	switch c.proto {
	case protoQuery:
		w.Header().Set("Content-Type", "text/xml")
		writeXML(w, out)
		return http.StatusOK, nil
	case protoREST:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(out)
		return http.StatusCreated, nil
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
		return http.StatusOK, nil
	}
}

func unknownOperation(c *call) *apiError {
	if c.proto == protoQuery {
		return errorf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version 2011-06-15", c.name)
	}
	return errorf(http.StatusBadRequest, "UnknownOperationException", "operation %s is not supported by the awsdev emulator", c.op)
}

// route finds the service and operation of a request as AWS front ends do:
// the Roles Anywhere path, X-Amz-Target for JSON services, Action for the
// query protocol.
func route(c *call) *apiError {
	r := c.r
	if r.URL.Path == "/sessions" {
		c.service, c.name, c.proto = "rolesanywhere", "CreateSession", protoREST
		if r.Method != http.MethodPost {
			return errorf(http.StatusMethodNotAllowed, "ValidationException", "CreateSession is POST /sessions")
		}
		c.op = c.service + ":" + c.name
		return nil
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		c.proto = protoJSON
		prefix, name, _ := strings.Cut(target, ".")
		switch prefix {
		case "secretsmanager":
			c.service = "secretsmanager"
		case "AmazonSSM":
			c.service = "ssm"
		default:
			return errorf(http.StatusBadRequest, "UnknownOperationException", "unknown X-Amz-Target %q", target)
		}
		if name == "" {
			return errorf(http.StatusBadRequest, "UnknownOperationException", "unknown X-Amz-Target %q", target)
		}
		c.name = name
		c.op = c.service + ":" + name
		return nil
	}
	c.proto = protoQuery
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		body, err := url.ParseQuery(string(c.body))
		if err != nil {
			return errorf(http.StatusBadRequest, "MalformedQueryString", "the request body is not a form")
		}
		for k, v := range body {
			form[k] = append(form[k], v...)
		}
	}
	c.form = form
	c.name = form.Get("Action")
	if c.name == "" {
		return errorf(http.StatusBadRequest, "MissingAction", "no X-Amz-Target header and no Action parameter: not an AWS request the emulator knows")
	}
	c.service = "sts"
	c.op = "sts:" + c.name
	return nil
}

// faultError is the answer each service gives for an injected fault.
func faultError(service string, f Fault) *apiError {
	switch f {
	case FaultThrottle:
		switch service {
		case "sts":
			return errorf(http.StatusBadRequest, "Throttling", "Rate exceeded")
		case "rolesanywhere":
			return errorf(http.StatusTooManyRequests, "TooManyRequestsException", "Rate exceeded")
		}
		return errorf(http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
	case FaultUnavailable:
		return errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unavailable")
	default:
		code := map[string]string{
			"secretsmanager": "InternalServiceError",
			"ssm":            "InternalServerError",
			"sts":            "InternalFailure",
			"rolesanywhere":  "InternalServerException",
		}[service]
		return errorf(http.StatusInternalServerError, code, "injected internal failure")
	}
}

func (s *Server) logCall(c *call, status int, start time.Time) {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"op", c.op, "status", status, "duration", time.Since(start), "request_id", c.requestID}
	if c.who != nil {
		attrs = append(attrs, "principal", c.who.arn)
	}
	s.log.Debug("awsdev: request", attrs...)
}
