package awsdev

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// This file is the verifying side of AWS Signature Version 4, written from
// the AWS documentation ("Create a signed AWS API request"). Roles Anywhere
// uses the same canonical request with an X.509 signature (x509auth.go).

const (
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
	hmacAlgorithm   = "AWS4-HMAC-SHA256"
	// sigV4Skew is how far a request's date may be from the server's clock.
	sigV4Skew = 15 * time.Minute
)

// authHeader is a parsed Authorization header:
// ALG Credential=ID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=HEX
type authHeader struct {
	algorithm     string
	credential    string // access key id, or the certificate serial for Roles Anywhere
	date          string // yyyymmdd
	region        string
	service       string
	terminator    string
	signedHeaders []string
	signature     string
}

func (a authHeader) scope() string {
	return a.date + "/" + a.region + "/" + a.service + "/" + a.terminator
}

var errMalformedAuth = errors.New("malformed Authorization header")

// parseAuthorization parses an Authorization header. It checks the shape,
// not the values.
func parseAuthorization(v string) (authHeader, error) {
	var a authHeader
	alg, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || alg == "" {
		return a, errMalformedAuth
	}
	a.algorithm = alg
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, errMalformedAuth
		}
		switch k {
		case "Credential":
			f := strings.Split(val, "/")
			if len(f) != 5 || f[0] == "" {
				return a, errMalformedAuth
			}
			a.credential, a.date, a.region, a.service, a.terminator = f[0], f[1], f[2], f[3], f[4]
			haveCred = true
		case "SignedHeaders":
			if val == "" {
				return a, errMalformedAuth
			}
			a.signedHeaders = strings.Split(val, ";")
			haveSigned = true
		case "Signature":
			if val == "" {
				return a, errMalformedAuth
			}
			a.signature = val
			haveSig = true
		default:
			return a, errMalformedAuth
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return a, errMalformedAuth
	}
	return a, nil
}

// signedHeadersValid reports whether names are lower case, sorted, unique
// and include host, as SigV4 requires.
func signedHeadersValid(names []string) bool {
	hasHost := false
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || (i > 0 && names[i-1] >= n) {
			return false
		}
		if n == "host" {
			hasHost = true
		}
	}
	return hasHost
}

// canonicalRequest builds the SigV4 canonical request of r from the headers
// the client says it signed.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI encodes each segment of the (already escaped) path once
// more, as SigV4 does for every service but S3.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s)
	}
	return strings.Join(segs, "/")
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		// Decode what the client encoded, then encode canonically.
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		pairs = append(pairs, kv{uriEncode(k), uriEncode(v)})
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

// uriEncode percent-encodes every byte but the RFC 3986 unreserved ones.
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

// canonicalHeaderValue joins a header's values with commas, trimmed and
// with runs of spaces collapsed. Go's server moves Host out of the header
// map, so it comes from r.Host.
func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	default:
		vals = r.Header.Values(name)
	}
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

func stringToSign(algorithm, amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// sigV4Signature is the hex HMAC signature of sts with the key derived from
// secret and the scope.
func sigV4Signature(secret string, a authHeader, sts string) string {
	k := hmacSHA256([]byte("AWS4"+secret), a.date)
	k = hmacSHA256(k, a.region)
	k = hmacSHA256(k, a.service)
	k = hmacSHA256(k, a.terminator)
	return hex.EncodeToString(hmacSHA256(k, sts))
}

func payloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// requestDate reads X-Amz-Date, the only date form the emulator accepts.
func requestDate(r *http.Request) (string, time.Time, bool) {
	v := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, v)
	return v, t, err == nil
}
