package signer

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// ErrWeakSignature is the cause for a certificate signed with MD5 or SHA-1,
// which IAM Roles Anywhere refuses.
var ErrWeakSignature = errors.New("certificate is signed with a weak algorithm")

// ExpiryWarning is how close to its end a certificate's validity must be
// for Check to warn.
const ExpiryWarning = 7 * 24 * time.Hour

// Identity is an end-entity certificate, the intermediates sent with it,
// and a signer for its private key. It signs requests and never exposes
// the key: printing an Identity prints the certificate's subject and
// serial number only.
type Identity struct {
	Certificate   *x509.Certificate
	Intermediates []*x509.Certificate

	key                          crypto.Signer
	certPath, keyPath, chainPath string
	keyMode                      fs.FileMode // permission bits of the key file; 0 when unknown
}

// NewIdentity makes an identity from parsed parts. key may be any
// crypto.Signer (a hardware token, a KMS key) whose Sign takes a SHA-256
// digest and returns PKCS#1 v1.5 (RSA) or ASN.1 DER (ECDSA) signatures.
func NewIdentity(cert *x509.Certificate, intermediates []*x509.Certificate, key crypto.Signer) (*Identity, error) {
	if cert == nil || key == nil {
		return nil, errors.New("signer: NewIdentity needs a certificate and a key")
	}
	if err := checkPublicKey(cert.PublicKey); err != nil {
		return nil, &FileError{Path: "(in memory)", What: "certificate", Err: err}
	}
	return &Identity{Certificate: cert, Intermediates: dedupChain(cert, intermediates), key: key,
		certPath: "(in memory)", keyPath: "(in memory)", chainPath: "(in memory)"}, nil
}

// Signer returns the signer of the private key.
func (id *Identity) Signer() crypto.Signer { return id.key }

// Fingerprint is the SHA-256 of the certificate's DER, in hex.
func (id *Identity) Fingerprint() string {
	sum := sha256.Sum256(id.Certificate.Raw)
	return hex.EncodeToString(sum[:])
}

// Serial is the certificate's serial number in decimal, as the signature's
// credential scope names it.
func (id *Identity) Serial() string { return id.Certificate.SerialNumber.String() }

// CertificatePath and KeyPath name where the certificate and the key came
// from, for messages.
func (id *Identity) CertificatePath() string { return id.certPath }
func (id *Identity) KeyPath() string         { return id.keyPath }

func (id Identity) String() string {
	if id.Certificate == nil {
		return "signer.Identity{}"
	}
	return fmt.Sprintf("certificate %q serial %s", id.Certificate.Subject.String(), id.Serial())
}

// GoString and Format print String: never the key.
func (id Identity) GoString() string { return id.String() }

func (id Identity) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(id.String())) }

// Warning is a local check that passed with a concern worth logging.
type Warning struct {
	Path string // the file concerned
	Msg  string
}

func (w Warning) String() string { return w.Path + ": " + w.Msg }

// Check runs the local checks that need no network: the key matches the
// certificate; the certificate is an end-entity certificate that may sign,
// signed with SHA-256 or stronger, and valid at now; the intermediates are
// valid at now. It returns the first failure as a *FileError, and warnings
// for a certificate that expires within ExpiryWarning, intermediates that
// do not chain in order, and a key file readable by group or others.
func (id *Identity) Check(now time.Time) ([]Warning, error) {
	var warns []Warning
	leaf := id.Certificate
	certErr := func(err error) error { return &FileError{Path: id.certPath, What: "certificate", Err: err} }

	if !publicKeysEqual(leaf.PublicKey, id.key.Public()) {
		return nil, &FileError{Path: id.keyPath, What: "private key", Err: fmt.Errorf("%w %s", ErrKeyMismatch, id.certPath),
			hint: "the key and the certificate files must belong together; compare `openssl x509 -noout -pubkey` with `openssl pkey -pubout`"}
	}
	if leaf.Version != 3 {
		return nil, certErr(fmt.Errorf("%w: it is X.509 version %d, not 3", ErrCannotSign, leaf.Version))
	}
	if leaf.IsCA {
		return nil, certErr(fmt.Errorf("%w: it is a CA certificate (basic constraints CA:TRUE), not an end-entity one", ErrCannotSign))
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, certErr(fmt.Errorf("%w: its key usage lacks digitalSignature", ErrCannotSign))
	}
	if WeakSignature(leaf.SignatureAlgorithm) {
		return nil, certErr(fmt.Errorf("%w (%s); IAM Roles Anywhere requires SHA-256 or stronger", ErrWeakSignature, leaf.SignatureAlgorithm))
	}
	if err := validAt(leaf, now); err != nil {
		return nil, certErr(err)
	}
	if left := leaf.NotAfter.Sub(now); left < ExpiryWarning {
		warns = append(warns, Warning{id.certPath, fmt.Sprintf("the certificate expires in %s, at %s",
			left.Round(time.Minute), leaf.NotAfter.UTC().Format(time.RFC3339))})
	}
	issuer := leaf
	for i, c := range id.Intermediates {
		if err := validAt(c, now); err != nil {
			return nil, &FileError{Path: id.chainPath, What: "intermediates",
				Err: fmt.Errorf("certificate %d (%s): %w", i+1, c.Subject.String(), err)}
		}
		if left := c.NotAfter.Sub(now); left < ExpiryWarning {
			warns = append(warns, Warning{id.chainPath, fmt.Sprintf("intermediate %q expires in %s",
				c.Subject.String(), left.Round(time.Minute))})
		}
		if !bytes.Equal(issuer.RawIssuer, c.RawSubject) || issuer.CheckSignatureFrom(c) != nil {
			warns = append(warns, Warning{id.chainPath, fmt.Sprintf("intermediate %d (%s) did not issue %q; "+
				"the bundle should list the CAs from the leaf's issuer upwards", i+1, c.Subject.String(), issuer.Subject.String())})
		}
		issuer = c
	}
	if id.keyMode&0o077 != 0 {
		warns = append(warns, Warning{id.keyPath, fmt.Sprintf("the private key file is readable by group or others (mode %04o); chmod 600 it", id.keyMode)})
	}
	return warns, nil
}

func validAt(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%w: expired at %s", ErrExpired, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// WeakSignature reports a certificate signature algorithm that IAM Roles
// Anywhere refuses (MD2, MD5 and SHA-1 based).
func WeakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}
