package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The fake server stands in for IAM Roles Anywhere in the unit tests of
// the client and the provider. It rebuilds the canonical request from what
// arrived, with code of its own, and verifies the signature; the
// emulator tests (internal/awsdev) check the scheme independently again.

type requestSeen struct {
	canonical string
	verified  error
	query     url.Values
	body      string
	header    http.Header
}

type fakeServer struct {
	*httptest.Server
	calls atomic.Int64
}

// newFakeServer answers with handle's status, error type and body.
func newFakeServer(t testing.TB, handle func(*requestSeen) (status int, errType, body string)) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		seen := &requestSeen{query: r.URL.Query(), body: string(body), header: r.Header}
		seen.canonical, seen.verified = serverVerify(r, body)
		status, errType, out := handle(seen)
		if errType != "" {
			w.Header().Set("X-Amzn-ErrorType", errType+":http://internal.amazon.com/coral/com.amazonaws.rolesanywhere/")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(f.Close)
	return f
}

// serverVerify rebuilds the canonical request and verifies the signature.
func serverVerify(r *http.Request, body []byte) (string, error) {
	auth := r.Header.Get("Authorization")
	alg, rest, _ := strings.Cut(auth, " ")
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	var keys []string
	q := r.URL.Query()
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		for _, v := range q[k] {
			qs = append(qs, strings.ReplaceAll(url.QueryEscape(k), "+", "%20")+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	var hs strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&hs, "%s:%s\n", h, strings.TrimSpace(v))
	}
	sum := sha256.Sum256(body)
	canonical := strings.Join([]string{r.Method, r.URL.EscapedPath(), strings.Join(qs, "&"), hs.String(),
		fields["SignedHeaders"], hex.EncodeToString(sum[:])}, "\n")

	cred := strings.SplitN(fields["Credential"], "/", 2)
	if len(cred) != 2 {
		return canonical, fmt.Errorf("bad Credential %q", fields["Credential"])
	}
	der, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Amz-X509"))
	if err != nil {
		return canonical, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return canonical, err
	}
	if cert.SerialNumber.String() != cred[0] {
		return canonical, fmt.Errorf("credential %s is not the serial %s", cred[0], cert.SerialNumber)
	}
	csum := sha256.Sum256([]byte(canonical))
	sts := alg + "\n" + r.Header.Get("X-Amz-Date") + "\n" + cred[1] + "\n" + hex.EncodeToString(csum[:])
	digest := sha256.Sum256([]byte(sts))
	sig, _ := hex.DecodeString(fields["Signature"])
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if alg != "AWS4-X509-RSA-SHA256" {
			return canonical, fmt.Errorf("algorithm %s for RSA", alg)
		}
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case *ecdsa.PublicKey:
		if alg != "AWS4-X509-ECDSA-SHA256" {
			return canonical, fmt.Errorf("algorithm %s for ECDSA", alg)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			err = fmt.Errorf("ECDSA signature does not verify")
		}
	}
	return canonical, err
}

// sessionJSON is a CreateSession answer whose credentials expire at exp.
func sessionJSON(n int64, exp time.Time) string {
	return fmt.Sprintf(`{"credentialSet":[{"assumedRoleUser":{"arn":"arn:aws:sts::123456789012:assumed-role/reader/web-01","assumedRoleId":"AROAEXAMPLE:web-01"},`+
		`"credentials":{"accessKeyId":"ASIAFAKE%d","secretAccessKey":"SECRETSENTINEL%d","sessionToken":"TOKENSENTINEL%d","expiration":"%s"},`+
		`"packedPolicySize":0,"roleArn":"arn:aws:iam::123456789012:role/app/reader","sourceIdentity":"p256.test.invalid"}],`+
		`"subjectArn":"arn:aws:rolesanywhere:us-east-1:123456789012:subject/abc"}`, n, n, n, exp.UTC().Format(time.RFC3339))
}
