package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rolesenv/rolesenv/internal/netlimit"
)

// ServerOptions shape the endpoint. The zero value is the hardened
// default.
type ServerOptions struct {
	// Metrics, when set, answers /metrics instead of State.WriteText.
	Metrics http.Handler
	// Logger gets the HTTP server's own error lines (a client's TLS
	// attempt, a connection cut short) at debug level: a remote client
	// can cause them at will, so they must not fill the log. Nil is quiet.
	Logger *slog.Logger
	// MaxConns bounds the connections held at once, /healthz and /readyz
	// included (default 16); more wait in the kernel's backlog.
	MaxConns int
	// HeaderTimeout is how long a client has to send its headers (default
	// 5 s).
	HeaderTimeout time.Duration
}

// Limits of the endpoint: a scraper sends a small GET and reads a few
// KB; anything slower or larger is not one.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 5 * time.Second
	maxHeaderBytes    = 8 << 10
	defaultMaxConns   = 16
)

// Server serves a State over HTTP.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	addr string
}

// ListenAddr turns --metrics-listen's value into an address: a bare port
// ("9464", ":9464") is on the loopback interface; a host, including
// 0.0.0.0 or [::], is taken as given.
func ListenAddr(value string) (string, error) {
	v := strings.TrimPrefix(value, ":")
	if _, err := strconv.ParseUint(v, 10, 16); err == nil {
		return net.JoinHostPort("127.0.0.1", v), nil
	}
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		return "", fmt.Errorf("want PORT or HOST:PORT: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("invalid port %q", port)
	}
	return net.JoinHostPort(host, port), nil
}

// Serve listens on addr (see ListenAddr) and serves /metrics, /healthz and
// /readyz from s until Close. Only GET and HEAD are answered; headers
// must arrive within 5 s (ServerOptions.HeaderTimeout) and fit in 8 KiB;
// a request has 10 s to be read and its answer 10 s to be written; an
// idle connection is closed after 5 s, so that idle keep-alives do not
// hold the connection slots. The handlers read atomics only: a scrape never waits for the
// supervisor, and the supervisor never waits for a scrape.
func Serve(addr string, s *State, o ServerOptions) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = defaultMaxConns
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = readHeaderTimeout
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for metrics: %w", err)
	}
	srv := &Server{ln: netlimit.New(ln, o.MaxConns), addr: ln.Addr().String()}
	srv.srv = &http.Server{
		Handler:           Handler(s, o.Metrics),
		ReadHeaderTimeout: o.HeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { _ = srv.srv.Serve(srv.ln) }()
	return srv, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close stops the server, letting scrapes in flight finish for up to a
// second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// Handler answers /metrics (with metrics, or State.WriteText when nil),
// /healthz and /readyz, for GET and HEAD only.
func Handler(s *State, metrics http.Handler) http.Handler {
	if metrics == nil {
		metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_ = s.WriteText(w)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/metrics":
			metrics.ServeHTTP(w, r)
		case "/healthz":
			ok, why := s.Healthy(s.now())
			probe(w, ok, why)
		case "/readyz":
			ok, why := s.Ready(s.now())
			probe(w, ok, why)
		default:
			http.NotFound(w, r)
		}
	})
}

func probe(w http.ResponseWriter, ok bool, why string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = fmt.Fprintln(w, why)
}

// Healthy reports whether rolesenv's loops turn: true while starting,
// until the start-up limit (SetStartUpLimit) has passed; then while the
// supervisor's last turn is no older than three of its periods and the
// watcher's (once it runs) no older than its bound (Watched).
func (s *State) Healthy(now time.Time) (bool, string) {
	if !s.loopStarted.Load() {
		took := now.Sub(s.start)
		if limit := time.Duration(s.startUpMax.Load()); limit > 0 && took > limit {
			return false, fmt.Sprintf("unhealthy: start-up has taken %v (at most %v)", took.Round(time.Millisecond), limit)
		}
		return true, "ok: starting"
	}
	age := now.Sub(time.Unix(0, s.loopBeat.Load()))
	if limit := 3 * time.Duration(s.beatEvery.Load()); age > limit {
		return false, fmt.Sprintf("unhealthy: the supervisor's loop has not turned for %v", age.Round(time.Millisecond))
	}
	if ok, why := s.WatcherHealthy(now); !ok {
		return false, why
	}
	return true, "ok"
}

// WatcherHealthy reports whether the watcher's loop turns: true before
// it runs, then while its last turn is no older than its bound.
func (s *State) WatcherHealthy(now time.Time) (bool, string) {
	if !s.watchStarted.Load() {
		return true, "ok"
	}
	age := now.Sub(time.Unix(0, s.watchBeat.Load()))
	if limit := time.Duration(s.watchBound.Load()); age > limit {
		return false, fmt.Sprintf("unhealthy: the watcher's loop has not turned for %v", age.Round(time.Millisecond))
	}
	return true, "ok"
}

// Ready reports whether the command runs on an environment no older than
// the ready threshold (SetReadyThreshold; zero: any age).
func (s *State) Ready(now time.Time) (bool, string) {
	if !s.commandUp.Load() {
		return false, "not ready: the command is not running"
	}
	age, limit := s.envAge(now), time.Duration(s.readyAfter.Load())
	if limit > 0 && age > limit {
		return false, fmt.Sprintf("not ready: the environment was last confirmed current %v ago (at most %v)", age.Round(time.Second), limit)
	}
	return true, "ok"
}
