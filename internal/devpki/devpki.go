// Package devpki makes X.509 certificate authorities, intermediates and
// leaf certificates for the local emulator, `rolesenv dev` and the tests.
//
// It is a test and development tool, not a CA: keys live in memory or in
// files the caller writes, serial numbers are random, and there is no
// revocation. Nothing here is used on the path that signs real requests.
package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// KeyType names a key algorithm and size.
type KeyType string

// The key types Roles Anywhere accepts.
const (
	RSA2048 KeyType = "rsa2048"
	RSA3072 KeyType = "rsa3072"
	RSA4096 KeyType = "rsa4096"
	P256    KeyType = "p256"
	P384    KeyType = "p384"
	P521    KeyType = "p521"
)

// NewKey generates a private key of type t.
func NewKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case P256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case P521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// Options describe a certificate to issue. Zero values take defaults: a
// P-256 key, valid from one hour ago for one year.
type Options struct {
	CommonName   string
	Organization string
	DNSNames     []string
	IPAddresses  []net.IP
	URIs         []*url.URL
	Emails       []string
	KeyType      KeyType
	Key          crypto.Signer // use this key instead of generating one
	NotBefore    time.Time
	NotAfter     time.Time
	// KeyUsage overrides the default (DigitalSignature for leaves,
	// CertSign|CRLSign for CAs). Set NoKeyUsage to omit the extension.
	KeyUsage   x509.KeyUsage
	NoKeyUsage bool
}

// Cert is a certificate with its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes a self-signed root CA.
func NewCA(opts Options) (*Cert, error) {
	return issue(nil, opts, true)
}

// Intermediate issues a CA certificate signed by c.
func (c *Cert) Intermediate(opts Options) (*Cert, error) {
	return issue(c, opts, true)
}

// Leaf issues an end-entity certificate signed by c.
func (c *Cert) Leaf(opts Options) (*Cert, error) {
	return issue(c, opts, false)
}

func issue(parent *Cert, opts Options, isCA bool) (*Cert, error) {
	key := opts.Key
	if key == nil {
		var err error
		if key, err = NewKey(opts.KeyType); err != nil {
			return nil, err
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	notBefore, notAfter := opts.NotBefore, opts.NotAfter
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour).Truncate(time.Second)
	}
	if notAfter.IsZero() {
		notAfter = notBefore.Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CommonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPAddresses,
		URIs:                  opts.URIs,
		EmailAddresses:        opts.Emails,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if opts.Organization != "" {
		tmpl.Subject.Organization = []string{opts.Organization}
	}
	switch {
	case opts.NoKeyUsage:
	case opts.KeyUsage != 0:
		tmpl.KeyUsage = opts.KeyUsage
	case isCA:
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	default:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if !isCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
	}
	issuerCert, issuerKey := tmpl, key
	if parent != nil {
		issuerCert, issuerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuerCert, key.Public(), issuerKey)
	if err != nil {
		return nil, fmt.Errorf("failed to create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: cert, Key: key}, nil
}

// CertPEM returns the certificate in PEM.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM returns the private key as unencrypted PKCS#8 PEM.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic(err) // keys made here always marshal
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ParseCertPEM parses the first certificate in PEM data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no certificate in PEM data")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ParseKeyPEM parses an unencrypted PKCS#8, PKCS#1 or SEC1 private key.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key in PEM data")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
}

// Load reads a certificate and its key from PEM data, as written by CertPEM
// and KeyPEM.
func Load(certPEM, keyPEM []byte) (*Cert, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: cert, Key: key}, nil
}
