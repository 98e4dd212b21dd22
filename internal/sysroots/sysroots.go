package sysroots

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

var (
	loadOnce sync.Once
	loaded   *index
	loadErr  error
	warmOnce sync.Once
)

// system returns the index of the system's roots, loading it on first use.
func system() (*index, error) {
	loadOnce.Do(func() { loaded, loadErr = load(os.Getenv) })
	return loaded, loadErr
}

// Load loads the index now, if it is not yet, and returns how many
// certificates it holds.
func Load() (int, error) {
	x, err := system()
	if err != nil {
		return 0, err
	}
	return x.Len(), nil
}

// Warm starts loading the index in the background, once per process, for
// a caller that knows a handshake will need it.
func Warm() {
	if supported() {
		warmOnce.Do(func() { go func() { _, _ = system() }() })
	}
}

// Dialer opens TLS connections as an http.Transport does for itself:
// the raw connection with Dial, then the handshake with a copy of Config
// (ServerName set from the address when empty) within Timeout. When
// Config trusts the system's roots (no RootCAs, verification on), the
// server's chain is verified by this package instead of by crypto/tls,
// with the same result.
type Dialer struct {
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error) // nil: a net.Dialer
	Config  *tls.Config                                                       // nil: the zero configuration
	Timeout time.Duration                                                     // of the handshake; 0: none
}

// ForTransport returns a Dialer with tr's dialer, TLS configuration and
// handshake timeout, as they are now, and the application protocols that
// tr would offer. Set it as tr's DialTLSContext once tr is configured (as
// the last of a BuildableClient's transport options): it keeps a copy,
// and does not see later changes to tr, nor to the copies that the AWS
// SDK's BuildableClient makes of it.
func ForTransport(tr *http.Transport) *Dialer {
	c := &tls.Config{}
	if tr.TLSClientConfig != nil {
		c = tr.TLSClientConfig.Clone()
	}
	if len(c.NextProtos) == 0 {
		// What the transport adds to its configuration at its first
		// request, which may not have been made yet.
		c.NextProtos = []string{"http/1.1"}
		if tr.ForceAttemptHTTP2 {
			c.NextProtos = []string{"h2", "http/1.1"}
		}
	}
	return &Dialer{Dial: tr.DialContext, Config: c, Timeout: tr.TLSHandshakeTimeout}
}

// DialTLSContext dials addr and completes a TLS handshake with it.
func (d *Dialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := d.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{}
	if d.Config != nil {
		c = d.Config.Clone()
	}
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		c.ServerName = host
	}
	if lazy(c) {
		name, now := c.ServerName, c.Time
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			t := time.Time{}
			if now != nil {
				t = now()
			}
			return Verify(cs.PeerCertificates, name, t)
		}
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	tc := tls.Client(conn, c)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// lazy reports whether a handshake with c would verify the server against
// the system's roots, and this package can do that instead: not when c
// names no server (crypto/tls refuses to verify without a name), nor when
// the caller's own hooks would want the verified chains.
func lazy(c *tls.Config) bool {
	return supported() && c.RootCAs == nil && !c.InsecureSkipVerify && c.ServerName != "" &&
		c.VerifyConnection == nil && c.VerifyPeerCertificate == nil &&
		c.EncryptedClientHelloConfigList == nil
}

// Verify checks a server's certificates, as it sent them, for name (never
// empty) at
// time now (the zero time: the current time) against the system's roots,
// as crypto/tls does with a configuration whose RootCAs is nil. Its
// errors are those of crypto/tls.
func Verify(certs []*x509.Certificate, name string, now time.Time) error {
	if len(certs) == 0 {
		return errors.New("tls: server sent no certificate")
	}
	if name == "" {
		return errors.New("sysroots: no server name to verify the certificate for")
	}
	x, err := system()
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: x509.SystemRootsError{Err: err}}
	}
	opts := x509.VerifyOptions{
		Roots:         x.pool(certs),
		CurrentTime:   now,
		DNSName:       name,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	return nil
}
