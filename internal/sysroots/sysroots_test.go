package sysroots

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests verify against a store of their own: TestMain points
// SSL_CERT_FILE and SSL_CERT_DIR at it before anything loads the roots,
// so that crypto/x509's system pool and this package's index are the same
// files.

// pki is a certificate and its key.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64

// issue makes a certificate for tmpl, signed by parent (self-signed when
// parent is nil).
func issue(tmpl *x509.Certificate, parent *pki) *pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return &pki{cert: c, key: key}
}

func ca(name string, parent *pki) *pki {
	return issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, parent)
}

func leaf(parent *pki, dns []string, ips []net.IP, notAfter time.Time) *pki {
	return issue(&x509.Certificate{
		Subject: pkix.Name{CommonName: "server"}, DNSNames: dns, IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotAfter: notAfter,
	}, parent)
}

func pemOf(cs ...*pki) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})...)
	}
	return out
}

// The store's authorities.
var (
	rootBundle   = ca("root in the bundle", nil)
	rootDir      = ca("root in the directory", nil)
	rootHashLink = ca("root behind a hash link only", nil)
	rootElse     = ca("root linked from elsewhere", nil)
	rootTwinA    = ca("two roots of one name", nil)
	rootTwinB    = ca("two roots of one name", nil)
	outsider     = ca("not in the store", nil)
	interDir     = ca("intermediate under the directory's root", rootDir)
	selfLeaf     = issue(&x509.Certificate{Subject: pkix.Name{CommonName: "self-signed leaf in the store"}, DNSNames: []string{"localhost"}}, nil)
	headerRoot   = ca("root in a block with headers", nil)
	filler       []*pki
)

var storeErr error

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sysroots")
	if err != nil {
		panic(err)
	}
	storeErr = writeStore(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeStore lays out a store as Debian's: a bundle that is also a file of
// the directory, the directory's own files, hash links.
func writeStore(dir string) error {
	certs := filepath.Join(dir, "certs")
	elsewhere := filepath.Join(dir, "elsewhere")
	for _, d := range []string{certs, elsewhere} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	for range 40 {
		filler = append(filler, ca("filler", nil))
	}
	bundle := pemOf(append([]*pki{rootBundle, rootTwinA, selfLeaf}, filler...)...)
	bundle = append(bundle, []byte("# a comment\n-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n"+
		strings.TrimPrefix(string(pemOf(headerRoot)), "-----BEGIN CERTIFICATE-----\n"))...)
	files := map[string][]byte{
		filepath.Join(certs, "ca-certificates.crt"): bundle,
		filepath.Join(certs, "dir-root.pem"):        pemOf(rootDir),
		filepath.Join(certs, "twin-b.pem"):          pemOf(rootTwinB),
		filepath.Join(certs, "filler.pem"):          pemOf(filler[0]),
		filepath.Join(elsewhere, "hash-only.pem"):   pemOf(rootHashLink),
		filepath.Join(elsewhere, "else.pem"):        pemOf(rootElse),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return err
		}
	}
	links := map[string]string{
		filepath.Join(certs, "0123abcd.0"): "dir-root.pem",                                    // a hash link: skipped, the file is read
		filepath.Join(certs, "89abcdef.0"): "hash-only.pem",                                   // dangling within the directory: skipped
		filepath.Join(certs, "else.pem"):   filepath.Join(elsewhere, "else.pem"),              // read
		filepath.Join(certs, "hash.0"):     filepath.Join("..", "elsewhere", "hash-only.pem"), // a path: read
	}
	for name, target := range links {
		if err := os.Symlink(target, name); err != nil {
			return err
		}
	}
	os.Setenv(certFileEnv, filepath.Join(certs, "ca-certificates.crt"))
	os.Setenv(certDirEnv, certs+":"+filepath.Join(dir, "missing"))
	return nil
}

// serve answers one TLS handshake with chain and returns its address.
func serve(t *testing.T, chain ...*pki) string {
	t.Helper()
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	cert := tls.Certificate{PrivateKey: chain[0].key, Leaf: chain[0].cert}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.cert.Raw)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
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
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// dialBoth handshakes with addr as name twice: verified by crypto/tls
// against the system's pool, and by a Dialer. It returns both errors.
func dialBoth(t *testing.T, addr, name string) (std, ours error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	std = tls.Client(conn, &tls.Config{ServerName: name}).HandshakeContext(ctx)
	conn.Close()
	d := &Dialer{Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	c, ours := d.DialTLSContext(ctx, "tcp", net.JoinHostPort(name, "443"))
	if c != nil {
		c.Close()
	}
	return std, ours
}

// TestVerifyAsCryptoTLS: for each chain a server can send, a Dialer
// accepts what crypto/tls accepts against the whole system pool and
// refuses what it refuses, with the same error.
func TestVerifyAsCryptoTLS(t *testing.T) {
	localhost := []string{"localhost"}
	for _, tc := range []struct {
		name   string
		chain  []*pki
		server string
		ok     bool
	}{
		{"a root of the bundle", []*pki{leaf(rootBundle, localhost, nil, time.Time{})}, "localhost", true},
		{"a root of the directory, with its intermediate", []*pki{leaf(interDir, localhost, nil, time.Time{}), interDir}, "localhost", true},
		{"the intermediate not sent", []*pki{leaf(interDir, localhost, nil, time.Time{})}, "localhost", false},
		{"another name", []*pki{leaf(rootBundle, localhost, nil, time.Time{})}, "example.com", false},
		{"an IP address in the certificate", []*pki{leaf(rootBundle, nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Time{})}, "127.0.0.1", true},
		{"an IP address not in the certificate", []*pki{leaf(rootBundle, localhost, []net.IP{net.IPv4(127, 0, 0, 2)}, time.Time{})}, "127.0.0.1", false},
		{"expired", []*pki{leaf(rootBundle, localhost, nil, time.Now().Add(-time.Minute))}, "localhost", false},
		{"the leaf is a root of the store", []*pki{selfLeaf}, "localhost", true},
		{"an authority outside the store", []*pki{leaf(outsider, localhost, nil, time.Time{})}, "localhost", false},
		{"an authority outside the store, sent along", []*pki{leaf(outsider, localhost, nil, time.Time{}), outsider}, "localhost", false},
		{"a root behind a link with a path, and a dangling hash link", []*pki{leaf(rootHashLink, localhost, nil, time.Time{})}, "localhost", true},
		{"a root linked from another directory", []*pki{leaf(rootElse, localhost, nil, time.Time{})}, "localhost", true},
		{"the first of two roots of one name", []*pki{leaf(rootTwinA, localhost, nil, time.Time{})}, "localhost", true},
		{"the second of two roots of one name", []*pki{leaf(rootTwinB, localhost, nil, time.Time{})}, "localhost", true},
		{"a root in a block with headers", []*pki{leaf(headerRoot, localhost, nil, time.Time{})}, "localhost", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			std, ours := dialBoth(t, serve(t, tc.chain...), tc.server)
			if (std == nil) != tc.ok {
				t.Fatalf("crypto/tls: %v; the test expects ok=%v", std, tc.ok)
			}
			if (ours == nil) != (std == nil) {
				t.Fatalf("Dialer: %v; crypto/tls: %v", ours, std)
			}
			if std == nil {
				return
			}
			var stdErr, ourErr *tls.CertificateVerificationError
			if !errors.As(std, &stdErr) || !errors.As(ours, &ourErr) {
				t.Fatalf("not a CertificateVerificationError: crypto/tls %T %v, Dialer %T %v", std, std, ours, ours)
			}
			if stdErr.Err.Error() != ourErr.Err.Error() {
				t.Errorf("Dialer: %v\ncrypto/tls: %v", ourErr.Err, stdErr.Err)
			}
		})
	}
}

// TestParsesOnlyCandidates: a handshake parses the roots that can end the
// server's chain, not the store.
func TestParsesOnlyCandidates(t *testing.T) {
	x, err := load(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() < len(filler) {
		t.Fatalf("indexed %d certificates, fewer than the store's %d", x.Len(), len(filler))
	}
	l := leaf(rootTwinA, []string{"localhost"}, nil, time.Time{})
	if _, err := l.cert.Verify(x509.VerifyOptions{Roots: x.pool([]*x509.Certificate{l.cert}), DNSName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	parsed := 0
	for _, rs := range x.bySubject {
		for _, r := range rs {
			if r.der == nil {
				parsed++
			}
		}
	}
	if parsed != 2 {
		t.Errorf("parsed %d roots of %d; want the two named as the leaf's issuer", parsed, x.Len())
	}
}

// TestIndexHoldsWhatX509Reads: the index holds exactly the certificates
// that crypto/x509 would read from the same places, in this store and in
// the machine's own.
func TestIndexHoldsWhatX509Reads(t *testing.T) {
	for _, tc := range []struct {
		name   string
		getenv func(string) string
	}{
		{"the test's store", os.Getenv},
		{"the machine's store", func(string) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := load(tc.getenv)
			if err != nil {
				t.Skipf("no system roots here: %v", err)
			}
			want := referenceLoad(tc.getenv)
			got := map[string]bool{}
			for _, rs := range x.bySubject {
				for _, r := range rs {
					if c := r.parsed(); c != nil {
						got[string(c.Raw)] = true
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("index: %d certificates; crypto/x509's way: %d", len(got), len(want))
			}
			for der := range want {
				if !got[der] {
					c, _ := x509.ParseCertificate([]byte(der))
					t.Errorf("missing from the index: %s", c.Subject)
				}
			}
		})
	}
}

// referenceLoad reads the places load reads, with encoding/pem and
// x509.ParseCertificate as AppendCertsFromPEM does.
func referenceLoad(getenv func(string) string) map[string]bool {
	out := map[string]bool{}
	add := func(data []byte) {
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				return
			}
			if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
				continue
			}
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				out[string(c.Raw)] = true
			}
		}
	}
	files := certFiles
	if f := getenv(certFileEnv); f != "" {
		files = []string{f}
	}
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			add(data)
			break
		}
	}
	dirs := certDirectories
	if d := getenv(certDirEnv); d != "" {
		dirs = strings.Split(d, ":")
	}
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if !sameDirLink(e, d) {
				if data, err := os.ReadFile(d + "/" + e.Name()); err == nil {
					add(data)
				}
			}
		}
	}
	return out
}
