package awsdev

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A client that opens a connection and never sends a request (the SDK's
// transport leaves such connections behind after parallel requests) must
// not hold Close: net/http's Shutdown counts such a connection as busy
// until it is 5 s old, so a Close that only called Shutdown returned 5 s
// after the connection was opened. Close closes it at once, and still
// answers the request in flight.
func TestCloseWithConnectionThatSentNothing(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.URL())
	raw, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	opened := time.Now()

	// A request in flight, held by a latency that Close cuts short.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	s.SetLatency(time.Hour)
	answered := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
		resp, err := client.Do(req)
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Header.Get("X-Amzn-ErrorType")
	}()
	// The listener accepts in order, so once the request has arrived the
	// silent connection has been accepted too.
	waitForCall(t, s, opGet)
	s.connMu.Lock()
	fresh := len(s.fresh)
	s.connMu.Unlock()
	if fresh != 1 {
		t.Fatalf("%d connections that sent nothing, want 1", fresh)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if age := time.Since(opened); age >= 5*time.Second {
		t.Errorf("Close returned when the silent connection was %v old: it waited for net/http's 5 s rule", age)
	}
	// The request in flight got its answer (it has no credentials).
	if got := <-answered; got != "MissingAuthenticationTokenException" {
		t.Errorf("the request in flight got %q", got)
	}
	// The silent connection was closed by the server.
	if err := raw.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read on the silent connection after Close = %d, %v; want EOF", n, err)
	}
}
