package credserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// floodVar turns the test binary into a local attacker (see flood): the
// connections must live in another process, so that the test counts only
// the server's descriptors.
const floodVar = "CREDSERVER_TEST_FLOOD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(floodVar); spec != "" {
		os.Exit(flood(spec))
	}
	os.Exit(m.Run())
}

// flood runs "ADDR N MODE": it opens N connections to ADDR, sends on each
// what MODE says (request: one GET /credentials without a token; silent:
// nothing), prints "connected", then reads every connection until the
// server closes it, and prints "closed K of N". It holds every connection
// open until then, as an attacker would.
func flood(spec string) int {
	f := strings.Fields(spec)
	n, _ := strconv.Atoi(f[1])
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", f[0], 30*time.Second)
		if err != nil {
			fmt.Printf("dial: %v\n", err)
			return 1
		}
		if f[2] == "request" {
			_, _ = io.WriteString(c, "GET /credentials HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		}
		conns = append(conns, c)
	}
	fmt.Println("connected")
	deadline := time.Now().Add(30 * time.Second)
	var closed sync.WaitGroup
	var mu sync.Mutex
	k := 0
	for _, c := range conns {
		closed.Go(func() {
			_ = c.SetReadDeadline(deadline)
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				mu.Lock()
				k++
				mu.Unlock()
			}
		})
	}
	closed.Wait()
	fmt.Printf("closed %d of %d\n", k, n)
	return 0
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// runFlood starts the attacker against addr and samples this process's
// descriptors until it is done. It returns the attacker's last line and the
// most descriptors seen.
func runFlood(t *testing.T, addr string, n int, mode string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", floodVar, addr, n, mode))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	peak := make(chan int)
	go func() {
		most := 0
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if fds := openFDs(t); fds > most {
				most = fds
			}
			select {
			case <-stop:
				peak <- most
				return
			case <-tick.C:
			}
		}
	}()
	var last string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		last = sc.Text()
	}
	close(stop)
	most := <-peak
	if err := cmd.Wait(); err != nil {
		t.Fatalf("attacker: %v (last line %q)", err, last)
	}
	return last, most
}

// addr is the server's host:port.
func (s *Server) addr() string {
	return strings.TrimSuffix(strings.TrimPrefix(s.url, "http://"), "/credentials")
}

// Connections that send one request without the token and stay open are
// closed by the server, and never cost it more descriptors than its cap.
// Connections that send nothing are closed after ReadHeaderTimeout, the
// same way.
func TestFloodOfUnauthenticatedConnections(t *testing.T) {
	const n, maxConns = 300, 16
	for _, mode := range []string{"request", "silent"} {
		t.Run(mode, func(t *testing.T) {
			base := openFDs(t)
			s, err := Config{MaxConns: maxConns, ReadHeaderTimeout: 50 * time.Millisecond}.Start(&countingProvider{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			last, most := runFlood(t, s.addr(), n, mode)
			if last != fmt.Sprintf("closed %d of %d", n, n) {
				t.Errorf("attacker: %q, want every connection closed by the server", last)
			}
			t.Logf("descriptors: %d before, at most %d during the flood of %d connections", base, most, n)
			if limit := base + maxConns + 16; most > limit {
				t.Errorf("%d descriptors open during the flood, want at most %d", most, limit)
			}
		})
	}
}

// A client that trickles its headers (slowloris) is cut off at
// ReadHeaderTimeout, though it never stops sending.
func TestSlowHeadersAreCutOff(t *testing.T) {
	s, err := Config{ReadHeaderTimeout: 100 * time.Millisecond}.Start(&countingProvider{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /credentials HTTP/1.1\r\nHost: 127.0.0.1\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
					return
				}
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server still held the connection after 30s of trickled headers")
	}
}

// Headers past MaxHeaderBytes are refused.
func TestLargeHeadersAreRefused(t *testing.T) {
	s, err := Start(&countingProvider{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		_, _ = io.WriteString(c, "GET /credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, "431") {
		t.Fatalf("answer %q (%v), want 431", line, err)
	}
}

// While other connections fill the cap, a client with the token waits in
// the backlog and is served when a slot frees, rather than refused.
func TestClientWaitsForASlot(t *testing.T) {
	s, err := Config{MaxConns: 2, ReadHeaderTimeout: 200 * time.Millisecond}.Start(&countingProvider{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		c, err := net.Dial("tcp", s.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	req, _ := http.NewRequest("GET", s.URL(), nil)
	req.Header.Set("Authorization", envValue(s.Env(), TokenVar))
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Connection") == "close" {
		t.Errorf("status %d, Connection %q; want 200, kept alive", resp.StatusCode, resp.Header.Get("Connection"))
	}
}

// panickyProvider panics, as a bug would.
type panickyProvider struct{}

func (panickyProvider) Retrieve(context.Context) (aws.Credentials, error) { panic("provider bug") }

// The HTTP server's own error lines go through the logger given: with a
// JSON handler, every line is JSON.
func TestServerErrorsGoToTheLogger(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	s, err := Start(panickyProvider{}, log)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", s.URL(), nil)
	req.Header.Set("Authorization", envValue(s.Env(), TokenVar))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("status %d from a panicking handler, want the connection dropped", resp.StatusCode)
	}
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	found := false
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not JSON: %s", l)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "http: panic serving") && rec["level"] == "WARN" {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning about the panic in:\n%s", logs.String())
	}
}
