package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/signer/golden")

// Fixed inputs of the golden files.
var (
	goldenTime = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	goldenCfg  = Config{
		TrustAnchorARN:  "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f7a3c42-5e1b-4f8e-9a6d-2b1c3d4e5f60",
		ProfileARN:      "arn:aws:rolesanywhere:us-east-1:123456789012:profile/7d2e9b1a-3c4f-4a5b-8c6d-9e0f1a2b3c4d",
		RoleARN:         "arn:aws:iam::123456789012:role/app/reader",
		RoleSessionName: "web-01",
		Now:             func() time.Time { return goldenTime },
	}
)

// TestGoldenSignature compares the canonical request, the string to sign
// and the Authorization header of fixed requests with golden files. RSA
// PKCS#1 v1.5 signatures are deterministic, so the whole header is golden;
// an ECDSA signature is random, so it is verified with crypto/ecdsa and
// replaced by a placeholder. Run with -update to rewrite the files.
func TestGoldenSignature(t *testing.T) {
	tests := []struct {
		name, cert, key, chain string
	}{
		{"rsa2048", "rsa2048.pem", "rsa2048.key", ""},
		{"rsa4096", "rsa4096.pem", "rsa4096.key", ""},
		{"p256", "p256.pem", "p256.key", ""},
		{"p521", "p521.pem", "p521.key", ""},
		{"chained", "chained.pem", "chained.key", "intermediates.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Certificate: fixture(tt.cert), PrivateKey: fixture(tt.key)}
			if tt.chain != "" {
				opts.Intermediates = fixture(tt.chain)
			}
			id, err := LoadFiles(opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(id, goldenCfg)
			if err != nil {
				t.Fatal(err)
			}
			endpoint, body := c.target()
			req, sig, err := c.request(context.Background(), id, endpoint, body)
			if err != nil {
				t.Fatal(err)
			}
			if req.Header.Get("Authorization") != sig.authorization {
				t.Fatal("the request does not carry the Authorization computed")
			}
			verify(t, id, sig)
			auth := sig.authorization
			if id.Algorithm() == AlgorithmECDSA {
				auth = regexp.MustCompile(`Signature=[0-9a-f]+$`).ReplaceAllString(auth, "Signature=<ECDSA signature, verified>")
			}
			got := "== request line\n" + req.Method + " " + req.URL.RequestURI() + "\n" +
				"== body\n" + string(body) + "\n" +
				"== canonical request\n" + sig.canonicalRequest + "\n" +
				"== string to sign\n" + sig.stringToSign + "\n" +
				"== authorization\n" + auth + "\n"
			golden(t, filepath.Join(fixtures, "golden", tt.name+".txt"), got)
		})
	}
}

// verify checks the signature of the Authorization header against the
// string to sign with the certificate's public key.
func verify(t *testing.T, id *Identity, sig *signature) {
	t.Helper()
	m := regexp.MustCompile(`Signature=([0-9a-f]+)$`).FindStringSubmatch(sig.authorization)
	if m == nil {
		t.Fatalf("no signature in %q", sig.authorization)
	}
	raw, _ := hex.DecodeString(m[1])
	digest := sha256.Sum256([]byte(sig.stringToSign))
	switch pub := id.Certificate.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], raw); err != nil {
			t.Fatalf("RSA signature does not verify: %v", err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], raw) {
			t.Fatal("ECDSA signature does not verify")
		}
	default:
		t.Fatalf("key %T", pub)
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestCanonicalParts checks the SigV4 encoding rules that the golden files
// exercise only partly.
func TestCanonicalParts(t *testing.T) {
	if got := uriEncode("arn:aws:iam::1:role/a b~c_d.e-f+g"); got != "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b~c_d.e-f%2Bg" {
		t.Errorf("uriEncode = %s", got)
	}
	q := map[string][]string{"b": {"2", "1"}, "a": {"x y"}}
	if got := canonicalQuery(q); got != "a=x%20y&b=1&b=2" {
		t.Errorf("canonicalQuery = %s", got)
	}
}

// TestSignedHeadersSurviveTransport checks that what the client signs is
// what net/http sends: the host with its port, the query string as
// encoded, and the header values.
func TestSignedHeadersSurviveTransport(t *testing.T) {
	id, err := LoadFiles(LoadOptions{Certificate: fixture("chained.pem"), PrivateKey: fixture("chained.key"), Intermediates: fixture("intermediates.pem")})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	srv := newFakeServer(t, func(r *requestSeen) (int, string, string) {
		got <- r.canonical
		return 500, "", ""
	})
	cfg := goldenCfg
	cfg.Endpoint = srv.URL
	cfg.Now = nil
	cfg.MaxAttempts = 1
	c, err := NewClient(id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSession(context.Background())
	if err == nil {
		t.Fatal("want the fake server's 500")
	}
	endpoint, body := c.target()
	_, sig, _ := c.request(context.Background(), id, endpoint, body)
	serverSide := <-got
	// The dates differ by at most a second; compare without them.
	strip := regexp.MustCompile(`x-amz-date:\d{8}T\d{6}Z`)
	if strip.ReplaceAllString(serverSide, "") != strip.ReplaceAllString(sig.canonicalRequest, "") {
		t.Errorf("server-side canonical request differs:\n%s\n--- client\n%s", serverSide, sig.canonicalRequest)
	}
	if !strings.Contains(serverSide, "host:127.0.0.1:") {
		t.Errorf("host without port:\n%s", serverSide)
	}
}
