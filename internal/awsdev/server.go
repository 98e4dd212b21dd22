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
	"regexp"
	"slices"
	"strings"
	"sync"
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
	reg       *Region    // the region of the credential scope, set with who
}

type handler func(s *Server, c *call) (any, *apiError)

// handlers maps IAM action names to operations.
var handlers = map[string]handler{}

func register(op string, h handler) { handlers[op] = h }

// Start listens and serves until Close.
func Start(opts Options) (*Server, error) {
	for _, r := range append([]string{opts.Region}, opts.Regions...) {
		if r != "" && !regionNameRE().MatchString(r) {
			return nil, fmt.Errorf("awsdev: %q is not a region name (such as eu-west-1)", r)
		}
	}
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
		ConnState:         s.trackConn,
		ReadHeaderTimeout: 30 * time.Second,
		// The http package's own lines (a failed TLS handshake, a
		// panicking handler) go to the emulator's logger at debug.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
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
		accountID: opts.AccountID,
		now:       opts.Now,
		log:       opts.Logger,
		closing:   make(chan struct{}),
		served:    make(chan struct{}),
		users:     map[string]*user{},
		keys:      map[string]*accessKey{},
		roles:     map[string]*role{},
		sessions:  map[string]*session{},
		fresh:     map[net.Conn]bool{},
		regions:   map[string]*Region{},
		ctl:       newControls(),
	}
	home := opts.Region
	if home == "" {
		home = "us-east-1"
	}
	for _, name := range append([]string{home}, opts.Regions...) {
		if name != "" && s.regions[name] == nil {
			s.regionList = append(s.regionList, name)
			s.regions[name] = &Region{
				s: s, name: name,
				secrets: map[string]*secret{}, params: map[string]*parameter{},
				anchors: map[string]*trustAnchor{}, profiles: map[string]*profile{},
				subjects: map[string]string{},
			}
		}
	}
	s.home = s.regions[home]
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

// Region is the home region (Options.Region), where the Server's own data
// methods act. AccountID is the account of every ARN.
func (s *Server) Region() string    { return s.home.name }
func (s *Server) AccountID() string { return s.accountID }

// regionNameRE is what Start accepts as a region name.
var regionNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`) })

// Regions lists every region served: the home region, then Options.Regions
// in order.
func (s *Server) Regions() []string { return slices.Clone(s.regionList) }

// InRegion is the region called name, whose data methods create and change
// secrets, parameters, trust anchors and profiles there:
//
//	s.InRegion("eu-west-1").CreateSecret("app/db", value)
//
// A request reaches a region's data when its credential scope names that
// region. InRegion panics if the server does not serve name (see
// Options.Regions): that is a mistake in the test, not a condition to
// handle.
func (s *Server) InRegion(name string) *Region {
	r := s.regions[name]
	if r == nil {
		panic(fmt.Sprintf("awsdev: region %q is not served (served: %s); add it to Options.Regions", name, strings.Join(s.Regions(), ", ")))
	}
	return r
}

// closeGrace bounds how long Close waits for requests in flight.
const closeGrace = 10 * time.Second

// Close stops the listener, closes the connections that are idle or have
// not sent a request yet, and waits for the requests in flight to be
// answered (an added latency is cut short), for at most 10 s; then it
// closes whatever is left.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.srv.Shutdown(ctx) }()
	// Once Serve has returned, the listener is closed and every
	// connection it accepted has been reported to trackConn.
	<-s.served
	// Shutdown itself treats a connection that has not sent a request as
	// busy for its first 5 s (a request may be on its way); the emulator
	// is going away, so such a connection is closed now, like an idle one.
	s.connMu.Lock()
	for c := range s.fresh {
		c.Close()
	}
	s.connMu.Unlock()
	err := <-shut
	if errors.Is(err, context.DeadlineExceeded) {
		return s.srv.Close()
	}
	return err
}

// trackConn remembers the connections that have not sent a request yet.
func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if st == http.StateNew {
		s.fresh[c] = true
	} else {
		delete(s.fresh, c)
	}
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
		panic(http.ErrAbortHandler) // no empty 200 for a request cut short
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
	region := s.scopeRegion(r)
	s.ctl.count(c.op, region)
	if !s.ctl.delay(r.Context(), s.closing, c.op) {
		// The client went away. Returning would let net/http send an
		// empty 200, which a client racing its own cancellation can
		// take for an answer; abort the response instead.
		panic(http.ErrAbortHandler)
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
	if !s.ctl.allow(c.op, region, s.now()) {
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

// scopeRegion is the served region a request's credential scope names,
// or "" (the request will fail authentication). It is read before the
// request is authenticated, to count and throttle calls by region.
func (s *Server) scopeRegion(r *http.Request) string {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil || s.regions[a.region] == nil {
		return ""
	}
	return a.region
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
	if c.reg != nil {
		attrs = append(attrs, "region", c.reg.name)
	}
	s.log.Debug("awsdev: request", attrs...)
}
