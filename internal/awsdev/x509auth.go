package awsdev

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
)

// This file verifies the X.509 request signature of Roles Anywhere
// CreateSession, from the Roles Anywhere documentation ("The IAM Roles
// Anywhere authentication process" and "signing process"): a SigV4
// canonical request and string to sign, signed with the certificate's key.

const (
	x509RSA   = "AWS4-X509-RSA-SHA256"
	x509ECDSA = "AWS4-X509-ECDSA-SHA256"
	// x509Skew is how far X-Amz-Date may be from the server's clock.
	x509Skew = 5 * time.Minute
	// maxChain bounds the intermediates a request may send.
	maxChain = 10
)

func accessDenied(format string, args ...any) *apiError {
	return errorf(http.StatusForbidden, "AccessDeniedException", format, args...)
}

func raValidation(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ValidationException", format, args...)
}

// x509Request is what the signature of a CreateSession request proves:
// the holder of the leaf's key sent it, with these intermediates.
type x509Request struct {
	leaf          *x509.Certificate
	intermediates []*x509.Certificate
}

// parseCertHeader decodes one base64 DER certificate.
func parseCertHeader(v string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// parseX509Headers decodes X-Amz-X509 and the optional X-Amz-X509-Chain
// (comma-separated, in order from the leaf's issuer up).
func parseX509Headers(h http.Header) (x509Request, *apiError) {
	var req x509Request
	leafHeader := h.Get("X-Amz-X509")
	if leafHeader == "" {
		return req, raValidation("The X-Amz-X509 header with the signing certificate is missing.")
	}
	leaf, err := parseCertHeader(leafHeader)
	if err != nil {
		return req, raValidation("The X-Amz-X509 header is not a base64-encoded DER certificate.")
	}
	req.leaf = leaf
	if chain := h.Get("X-Amz-X509-Chain"); chain != "" {
		parts := strings.Split(chain, ",")
		if len(parts) > maxChain {
			return req, raValidation("The X-Amz-X509-Chain header has more than %d certificates.", maxChain)
		}
		for _, p := range parts {
			c, err := parseCertHeader(p)
			if err != nil {
				return req, raValidation("The X-Amz-X509-Chain header is not a comma-separated list of base64-encoded DER certificates.")
			}
			req.intermediates = append(req.intermediates, c)
		}
	}
	return req, nil
}

// verifyX509Signature checks the Authorization header of a CreateSession
// request: algorithm, credential, scope, date and signature.
func (s *Server) verifyX509Signature(c *call) (x509Request, *apiError) {
	r := c.r
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return x509Request{}, accessDenied("Missing Authentication Token")
	}
	a, err := parseAuthorization(hdr)
	if err != nil || !signedHeadersValid(a.signedHeaders) {
		return x509Request{}, accessDenied("Malformed Authorization header: it needs Credential, SignedHeaders (including host) and Signature.")
	}
	if a.algorithm != x509RSA && a.algorithm != x509ECDSA {
		return x509Request{}, accessDenied("Unsupported signing algorithm %q.", a.algorithm)
	}
	req, aerr := parseX509Headers(r.Header)
	if aerr != nil {
		return req, aerr
	}
	need := []string{"x-amz-date", "x-amz-x509"}
	if r.Header.Get("X-Amz-X509-Chain") != "" {
		need = append(need, "x-amz-x509-chain")
	}
	for _, n := range need {
		if !slices.Contains(a.signedHeaders, n) {
			return req, accessDenied("The %s header must be signed.", n)
		}
	}
	serial, ok := new(big.Int).SetString(a.credential, 10)
	if !ok || serial.Cmp(req.leaf.SerialNumber) != 0 {
		return req, accessDenied("The Credential is not the serial number of the signing certificate.")
	}
	amzDate, t, ok := requestDate(r)
	if !ok {
		return req, accessDenied("The X-Amz-Date header is missing or malformed.")
	}
	now := s.now()
	if t.Before(now.Add(-x509Skew)) || t.After(now.Add(x509Skew)) {
		return req, accessDenied("Signature expired: %s is not within 5 minutes of the server time %s.", amzDate, now.UTC().Format(amzDateFormat))
	}
	if a.date != amzDate[:8] {
		return req, accessDenied("The Credential date %s does not match X-Amz-Date %s.", a.date, amzDate)
	}
	reg := s.regions[a.region]
	if reg == nil {
		return req, accessDenied("Credential should be scoped to a valid region.")
	}
	if a.service != "rolesanywhere" || a.terminator != "aws4_request" {
		return req, accessDenied("Credential should be scoped to rolesanywhere/aws4_request.")
	}
	sig, err := hex.DecodeString(a.signature)
	if err != nil {
		return req, accessDenied("Invalid signature")
	}
	sts := stringToSign(a.algorithm, amzDate, a.scope(), canonicalRequest(r, a.signedHeaders, payloadHash(c.body)))
	digest := sha256.Sum256([]byte(sts))
	switch pub := req.leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if a.algorithm != x509RSA || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			return req, accessDenied("Invalid signature")
		}
	case *ecdsa.PublicKey:
		if a.algorithm != x509ECDSA || !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return req, accessDenied("Invalid signature")
		}
	default:
		return req, accessDenied("Unsupported key type in the signing certificate.")
	}
	c.reg = reg
	return req, nil
}

// checkLeaf applies the constraints Roles Anywhere puts on the signing
// certificate: X.509 v3, not a CA, digital signature key usage, and a
// signature algorithm of SHA-256 or stronger.
func checkLeaf(leaf *x509.Certificate) *apiError {
	switch {
	case leaf.Version != 3:
		return accessDenied("The signing certificate must be an X.509 v3 certificate.")
	case leaf.BasicConstraintsValid && leaf.IsCA:
		return accessDenied("The signing certificate must not be a CA certificate.")
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return accessDenied("The signing certificate's key usage must include Digital Signature.")
	}
	switch leaf.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS:
		return nil
	}
	return accessDenied("The signing certificate's signature algorithm %s is not accepted; use SHA-256 or stronger.", leaf.SignatureAlgorithm)
}

// verifyChain checks that the leaf chains to the anchor's CA through the
// sent intermediates, with every certificate valid at the server's time.
func (s *Server) verifyChain(req x509Request, anchor *x509.Certificate) *apiError {
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	inter := x509.NewCertPool()
	for _, c := range req.intermediates {
		inter.AddCert(c)
	}
	_, err := req.leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   s.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err == nil {
		return nil
	}
	if ce, ok := err.(x509.CertificateInvalidError); ok && ce.Reason == x509.Expired {
		return accessDenied("Untrusted Signing Certificate: a certificate in the chain is expired or not yet valid.")
	}
	return accessDenied("Untrusted Signing Certificate")
}

// certAttributes are the certificate values that role conditions see, as
// Roles Anywhere maps them into principal tags by default: the subject's
// and issuer's RDNs, and the first DNS name, URI and directory name of
// the SANs.
func certAttributes(leaf *x509.Certificate) map[string]string {
	m := map[string]string{}
	rdns := func(prefix string, n pkix.Name) {
		set := func(k string, v []string) {
			if len(v) > 0 {
				m[prefix+k] = v[0]
			}
		}
		if n.CommonName != "" {
			m[prefix+"CN"] = n.CommonName
		}
		set("O", n.Organization)
		set("OU", n.OrganizationalUnit)
		set("C", n.Country)
		set("L", n.Locality)
		set("ST", n.Province)
	}
	rdns("x509Subject/", leaf.Subject)
	rdns("x509Issuer/", leaf.Issuer)
	if len(leaf.DNSNames) > 0 {
		m["x509SAN/DNS"] = leaf.DNSNames[0]
	}
	if len(leaf.URIs) > 0 {
		m["x509SAN/URI"] = leaf.URIs[0].String()
	}
	if dn := firstDirectoryName(leaf); dn != "" {
		m["x509SAN/Name"] = dn
	}
	return m
}

// firstDirectoryName returns the first directoryName of the SAN extension,
// which crypto/x509 does not expose.
func firstDirectoryName(c *x509.Certificate) string {
	sanOID := asn1.ObjectIdentifier{2, 5, 29, 17}
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(sanOID) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) > 0 {
			return ""
		}
		for b := seq.Bytes; len(b) > 0; {
			var gn asn1.RawValue
			var err error
			if b, err = asn1.Unmarshal(b, &gn); err != nil {
				return ""
			}
			if gn.Class == asn1.ClassContextSpecific && gn.Tag == 4 {
				var rdn pkix.RDNSequence
				if _, err := asn1.Unmarshal(gn.Bytes, &rdn); err != nil {
					return ""
				}
				var n pkix.Name
				n.FillFromRDNSequence(&rdn)
				return n.String()
			}
		}
	}
	return ""
}

// checkConditions applies a role's conditions: each key's value must match
// one of its patterns; a missing attribute matches nothing.
func checkConditions(roleARN string, conds map[string][]string, attrs map[string]string) *apiError {
	for key, patterns := range conds {
		v, ok := attrs[key]
		if !ok || !matchAny(patterns, v, false) {
			return accessDenied("Unable to assume role for %s: the certificate does not satisfy the role's condition on %s.", roleARN, key)
		}
	}
	return nil
}
