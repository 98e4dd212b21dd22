package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The request signature of IAM Roles Anywhere is SigV4's canonical request
// and string to sign, with the HMAC chain replaced by a signature of the
// certificate's key, the certificate's serial number in place of the
// access key id, and the certificate (and intermediates) in headers that
// are signed too.
const (
	AlgorithmRSA   = "AWS4-X509-RSA-SHA256"
	AlgorithmECDSA = "AWS4-X509-ECDSA-SHA256"

	serviceName = "rolesanywhere"
	amzDate     = "20060102T150405Z"
	scopeDate   = "20060102"
)

// Algorithm is the signing algorithm for the identity's key.
func (id *Identity) Algorithm() string {
	switch id.Certificate.PublicKey.(type) {
	case *rsa.PublicKey:
		return AlgorithmRSA
	case *ecdsa.PublicKey:
		return AlgorithmECDSA
	}
	return ""
}

// signature is what signing a request produced, kept for tests.
type signature struct {
	canonicalRequest string
	stringToSign     string
	authorization    string
}

// SignRequest signs req, whose body is body, for region at time t: it
// sets X-Amz-Date, X-Amz-X509, X-Amz-X509-Chain (with intermediates) and
// Authorization. req must already carry its Content-Type. The signed
// headers are content-type, host, x-amz-date, x-amz-x509 and, with
// intermediates, x-amz-x509-chain; other headers may change in transit.
func (id *Identity) SignRequest(req *http.Request, body []byte, region string, t time.Time) error {
	_, err := id.sign(req, body, region, t)
	return err
}

func (id *Identity) sign(req *http.Request, body []byte, region string, t time.Time) (*signature, error) {
	alg := id.Algorithm()
	if alg == "" {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, id.Certificate.PublicKey)
	}
	t = t.UTC()
	req.Header.Set("X-Amz-Date", t.Format(amzDate))
	req.Header.Set("X-Amz-X509", base64.StdEncoding.EncodeToString(id.Certificate.Raw))
	signed := []string{"content-type", "host", "x-amz-date", "x-amz-x509"}
	if len(id.Intermediates) > 0 {
		chain := make([]string, len(id.Intermediates))
		for i, c := range id.Intermediates {
			chain[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		req.Header.Set("X-Amz-X509-Chain", strings.Join(chain, ","))
		signed = append(signed, "x-amz-x509-chain")
	} else {
		req.Header.Del("X-Amz-X509-Chain")
	}

	var cr strings.Builder
	cr.WriteString(req.Method)
	cr.WriteByte('\n')
	cr.WriteString(canonicalURI(req.URL))
	cr.WriteByte('\n')
	cr.WriteString(canonicalQuery(req.URL.Query()))
	cr.WriteByte('\n')
	for _, h := range signed {
		cr.WriteString(h)
		cr.WriteByte(':')
		cr.WriteString(canonicalHeaderValue(req, h))
		cr.WriteByte('\n')
	}
	cr.WriteByte('\n')
	signedHeaders := strings.Join(signed, ";")
	cr.WriteString(signedHeaders)
	cr.WriteByte('\n')
	cr.WriteString(hexSHA256(body))

	scope := t.Format(scopeDate) + "/" + region + "/" + serviceName + "/aws4_request"
	sts := alg + "\n" + t.Format(amzDate) + "\n" + scope + "\n" + hexSHA256([]byte(cr.String()))

	digest := sha256.Sum256([]byte(sts))
	sig, err := id.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, &SignError{Err: err}
	}
	auth := alg + " Credential=" + id.Serial() + "/" + scope + ", SignedHeaders=" + signedHeaders +
		", Signature=" + hex.EncodeToString(sig)
	req.Header.Set("Authorization", auth)
	return &signature{canonicalRequest: cr.String(), stringToSign: sts, authorization: auth}, nil
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return p
}

// canonicalQuery sorts parameters by name, then value, and encodes both as
// SigV4 does: every byte but the RFC 3986 unreserved characters as %XX.
func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, kv{uriEncode(k), uriEncode(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func canonicalHeaderValue(req *http.Request, name string) string {
	if name == "host" {
		if req.Host != "" {
			return req.Host
		}
		return req.URL.Host
	}
	return strings.Join(strings.Fields(strings.Join(req.Header.Values(name), ",")), " ")
}
