package sysroots

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// handshake dials addr with d and returns the connection's state.
func handshake(t *testing.T, d *Dialer, addr string) (tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.DialTLSContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// TestDialerLeavesOtherTrust: a configuration with roots of its own, or
// none at all, is verified by crypto/tls as it says; a VerifyConnection of
// the caller's still runs.
func TestDialerLeavesOtherTrust(t *testing.T) {
	addr := serve(t, leaf(outsider, nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Time{}))

	if _, err := handshake(t, &Dialer{}, addr); err == nil {
		t.Error("the system's roots accepted a certificate from outside the store")
	}

	own := x509.NewCertPool()
	own.AddCert(outsider.cert)
	cs, err := handshake(t, &Dialer{Config: &tls.Config{RootCAs: own}}, addr)
	if err != nil {
		t.Fatalf("with RootCAs: %v", err)
	}
	if len(cs.VerifiedChains) == 0 {
		t.Error("with RootCAs, crypto/tls did not verify (no verified chains)")
	}

	if _, err := handshake(t, &Dialer{Config: &tls.Config{InsecureSkipVerify: true}}, addr); err != nil {
		t.Errorf("InsecureSkipVerify: %v", err)
	}

	// The caller's own hooks see the chains crypto/tls verified.
	good := serve(t, leaf(rootBundle, nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Time{}))
	var chains []int
	refuse := errors.New("refused by the caller")
	_, err = handshake(t, &Dialer{Config: &tls.Config{VerifyConnection: func(cs tls.ConnectionState) error {
		chains = append(chains, len(cs.VerifiedChains))
		return refuse
	}}}, good)
	if !errors.Is(err, refuse) || len(chains) != 1 || chains[0] == 0 {
		t.Errorf("the caller's VerifyConnection: verified chains %v, handshake error %v", chains, err)
	}
	chains = nil
	_, err = handshake(t, &Dialer{Config: &tls.Config{VerifyPeerCertificate: func(_ [][]byte, v [][]*x509.Certificate) error {
		chains = append(chains, len(v))
		return nil
	}}}, good)
	if err != nil || len(chains) != 1 || chains[0] == 0 {
		t.Errorf("the caller's VerifyPeerCertificate: verified chains %v, handshake error %v", chains, err)
	}
}

// TestDialerNoServerName: an address without a host gives no name to
// verify for; the handshake is refused as crypto/tls refuses it, never
// accepted for any name.
func TestDialerNoServerName(t *testing.T) {
	addr := serve(t, leaf(rootBundle, []string{"attacker.example"}, nil, time.Time{}))
	_, port, _ := net.SplitHostPort(addr)
	d := &Dialer{Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	if _, err := handshake(t, d, ":"+port); err == nil {
		t.Error("a certificate for attacker.example was accepted for an address without a host")
	}
	if err := Verify([]*x509.Certificate{leaf(rootBundle, []string{"x.example"}, nil, time.Time{}).cert}, "", time.Time{}); err == nil {
		t.Error("Verify accepted a certificate for an empty name")
	}
}

// TestProxiedLeftToCryptoTLS: through a proxy, the transport verifies the
// server itself, against the whole system pool: the same verdicts.
func TestProxiedLeftToCryptoTLS(t *testing.T) {
	proxy := connectProxy(t)
	for _, tc := range []struct {
		name  string
		chain []*pki
		ok    bool
	}{
		{"a root of the store", []*pki{leaf(rootBundle, nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Time{})}, true},
		{"outside the store", []*pki{leaf(outsider, nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Time{})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, tc.chain...)
			tr := &http.Transport{Proxy: http.ProxyURL(proxy)}
			tr.DialTLSContext = ForTransport(tr).DialTLSContext
			_, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + addr + "/")
			var cve *tls.CertificateVerificationError
			if errors.As(err, &cve) == tc.ok {
				t.Errorf("through the proxy: %v", err)
			}
		})
	}
}

// connectProxy serves HTTP CONNECT on loopback.
func connectProxy(t *testing.T) *url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				up, err := net.Dial("tcp", req.Host)
				if err != nil {
					return
				}
				defer up.Close()
				io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
				go io.Copy(up, br) // what br holds beyond the request, then the rest
				io.Copy(c, up)
			}()
		}
	}()
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestForTransportProtocols: a Dialer made from a transport offers the
// protocols the transport would.
func TestForTransportProtocols(t *testing.T) {
	for _, tc := range []struct {
		h2   bool
		want string
	}{{false, "[http/1.1]"}, {true, "[h2 http/1.1]"}} {
		d := ForTransport(&http.Transport{ForceAttemptHTTP2: tc.h2})
		if got := fmtList(d.Config.NextProtos); got != tc.want {
			t.Errorf("ForceAttemptHTTP2 %v: %s, want %s", tc.h2, got, tc.want)
		}
	}
	d := ForTransport(&http.Transport{TLSClientConfig: &tls.Config{NextProtos: []string{"x"}}})
	if got := fmtList(d.Config.NextProtos); got != "[x]" {
		t.Errorf("the transport's own protocols: %s", got)
	}
}

func fmtList(l []string) string {
	s := "["
	for i, p := range l {
		if i > 0 {
			s += " "
		}
		s += p
	}
	return s + "]"
}
