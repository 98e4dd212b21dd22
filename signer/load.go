package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// MaxFileSize bounds every certificate, key and bundle file read: nothing
// legitimate comes close, and a wrong path (a log, a device) fails fast.
const MaxFileSize = 1 << 20

// LoadOptions name the files of an identity.
type LoadOptions struct {
	// Certificate is the end-entity certificate: PEM or DER, a PEM file
	// that also holds the private key, or a PKCS#12 bundle (which holds the
	// key and may hold intermediates). Required.
	Certificate string
	// PrivateKey is the key: PKCS#8, PKCS#1 or SEC1, PEM or DER, or
	// encrypted PKCS#8. Empty when Certificate holds the key.
	PrivateKey string
	// Intermediates is a bundle of CA certificates sent with the leaf, in
	// the order given (PEM, or concatenated DER). Optional.
	Intermediates string
	// Passphrase decrypts an encrypted key or a PKCS#12 bundle.
	Passphrase []byte
	// Signer is a key that is not read from a file (a TPM, a token),
	// used instead of PrivateKey; KeyName names it in messages.
	Signer  crypto.Signer
	KeyName string
	// CertificateData and IntermediatesData, when not nil, are read
	// instead of the files (a certificate on a token, in DER); Certificate
	// and Intermediates then only name them.
	CertificateData   []byte
	IntermediatesData []byte
}

// LoadFiles reads and parses an identity. It checks that every file can be
// read and parsed and that the key is of a supported type; the other local
// checks are Identity.Check's.
func LoadFiles(opts LoadOptions) (*Identity, error) {
	if opts.Certificate == "" {
		return nil, &ConfigError{Field: "certificate", Msg: "no certificate file given"}
	}
	id := &Identity{certPath: opts.Certificate, keyPath: opts.PrivateKey, chainPath: opts.Intermediates}
	inlineKey, certMode, err := id.loadCertificate(opts)
	if err != nil {
		return nil, err
	}
	if err := id.loadKey(opts, inlineKey, certMode); err != nil {
		return nil, err
	}
	if err := id.loadIntermediates(opts); err != nil {
		return nil, err
	}
	id.Intermediates = dedupChain(id.Certificate, id.Intermediates)
	if err := checkPublicKey(id.Certificate.PublicKey); err != nil {
		return nil, fileError(opts.Certificate, "certificate", err)
	}
	return id, nil
}

// fileError is a file's parse failure, with a hint where one helps.
func fileError(path, what string, err error) error {
	fe := &FileError{Path: path, What: what, Err: err}
	switch {
	case errors.Is(err, ErrLegacyPEMEncryption):
		fe.hint = "convert the key to encrypted PKCS#8: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW"
	case errors.Is(err, ErrUnsupportedKey):
		fe.hint = "IAM Roles Anywhere accepts RSA keys of 2048 to 4096 bits and ECDSA keys on P-256, P-384 and P-521"
	}
	return fe
}

// loadCertificate reads the certificate file: PEM (which may also hold
// the chain and the key), DER, or a PKCS#12 bundle. It returns a key the
// file held, and the file's mode.
func (id *Identity) loadCertificate(opts LoadOptions) (crypto.Signer, fs.FileMode, error) {
	certData, certMode, err := opts.CertificateData, fs.FileMode(0), error(nil)
	if certData == nil {
		if certData, certMode, err = readFile(opts.Certificate, "certificate"); err != nil {
			return nil, 0, err
		}
	}
	if isPEM(certData) {
		wantKey := opts.Signer == nil && (opts.PrivateKey == "" || opts.PrivateKey == opts.Certificate)
		certs, key, err := parsePEMCertificateFile(certData, opts.Passphrase, wantKey)
		if err != nil {
			return nil, 0, fileError(opts.Certificate, "certificate", err)
		}
		id.Certificate, id.Intermediates = certs[0], certs[1:]
		return key, certMode, nil
	}
	if cert, err := x509.ParseCertificate(certData); err == nil {
		id.Certificate = cert
		return nil, certMode, nil
	}
	if !looksLikePKCS12(certData) {
		return nil, 0, fileError(opts.Certificate, "certificate", fmt.Errorf("%w: neither a PEM or DER certificate nor a PKCS#12 bundle", ErrMalformed))
	}
	key, leaf, chain, err := ParsePKCS12(certData, opts.Passphrase)
	if err != nil {
		return nil, 0, fileError(opts.Certificate, "PKCS#12 bundle", err)
	}
	id.Certificate, id.Intermediates = leaf, chain
	return key, certMode, nil
}

// loadKey takes the key from opts.Signer, the key file, or the
// certificate file (inlineKey), in that order.
func (id *Identity) loadKey(opts LoadOptions, inlineKey crypto.Signer, certMode fs.FileMode) error {
	switch {
	case opts.Signer != nil:
		id.key, id.keyPath = opts.Signer, opts.KeyName
	case opts.PrivateKey != "" && opts.PrivateKey != opts.Certificate:
		keyData, mode, err := readFile(opts.PrivateKey, "private key")
		if err != nil {
			return err
		}
		key, err := ParsePrivateKey(keyData, opts.Passphrase)
		if err != nil {
			return fileError(opts.PrivateKey, "private key", err)
		}
		id.key, id.keyMode = key, mode
	case inlineKey != nil:
		id.key, id.keyPath, id.keyMode = inlineKey, opts.Certificate, certMode
	default:
		return &ConfigError{Field: "private key",
			Msg:  "no private key given, and the certificate file " + opts.Certificate + " holds none",
			hint: "name the key file, or use a PKCS#12 bundle or a PEM file that holds both"}
	}
	return nil
}

// loadIntermediates appends the intermediates file's certificates, in
// the order given.
func (id *Identity) loadIntermediates(opts LoadOptions) error {
	if opts.Intermediates == "" && opts.IntermediatesData == nil {
		return nil
	}
	data := opts.IntermediatesData
	if data == nil {
		var err error
		if data, _, err = readFile(opts.Intermediates, "intermediates"); err != nil {
			return err
		}
	}
	chain, err := ParseCertificates(data)
	if err != nil {
		return fileError(opts.Intermediates, "intermediates", err)
	}
	id.Intermediates = append(id.Intermediates, chain...)
	return nil
}

// ErrLegacyPEMEncryption is the cause for a key encrypted the pre-PKCS#8
// OpenSSL way (Proc-Type and DEK-Info headers), which is refused: its key
// derivation is a single MD5 and Go rightly dropped support for it.
var ErrLegacyPEMEncryption = errors.New("the key is encrypted in the legacy OpenSSL PEM format, which is not supported")

func readFile(path, what string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, &FileError{Path: path, What: what, Err: osCause(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, &FileError{Path: path, What: what, Err: osCause(err)}
	}
	if st.IsDir() {
		return nil, 0, &FileError{Path: path, What: what, Err: errors.New("is a directory")}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, 0, &FileError{Path: path, What: what, Err: osCause(err)}
	}
	if len(data) > MaxFileSize {
		return nil, 0, &FileError{Path: path, What: what, Err: fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxFileSize)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, 0, &FileError{Path: path, What: what, Err: fmt.Errorf("%w: the file is empty", ErrMalformed)}
	}
	return data, st.Mode().Perm(), nil
}

// osCause turns an os error into its cause alone: the path is already in
// the FileError.
func osCause(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return ErrPermission
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isPEM(data []byte) bool { return bytes.Contains(data, []byte("-----BEGIN ")) }

// looksLikePKCS12 tells a PKCS#12 bundle (a DER PFX, version 3) from a
// damaged certificate, for the error message, without any decryption.
func looksLikePKCS12(data []byte) bool {
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  asn1.RawValue `asn1:"optional"`
	}
	rest, err := asn1.Unmarshal(data, &pfx)
	return err == nil && len(rest) == 0 && pfx.Version == 3
}

// pemBlocks decodes every PEM block in data. Text between blocks is
// allowed (OpenSSL writes "Bag Attributes" there); anything that starts
// like a block and does not decode is an error.
func pemBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		b, r := pem.Decode(rest)
		if b == nil {
			if bytes.Contains(rest, []byte("-----BEGIN ")) {
				return nil, fmt.Errorf("%w: a PEM block does not decode", ErrMalformed)
			}
			return blocks, nil
		}
		blocks = append(blocks, b)
		rest = r
	}
}

// parsePEMCertificateFile parses a PEM file whose first certificate is the
// leaf; further certificates are intermediates; a private key in it is
// returned when wantKey.
func parsePEMCertificateFile(data, passphrase []byte, wantKey bool) ([]*x509.Certificate, crypto.Signer, error) {
	blocks, err := pemBlocks(data)
	if err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
	var key crypto.Signer
	for _, b := range blocks {
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: certificate %d: %v", ErrMalformed, len(certs)+1, err)
			}
			certs = append(certs, c)
		case wantKey && key == nil && isKeyBlock(b.Type):
			if key, err = parseKeyBlock(b, passphrase); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("%w: no CERTIFICATE block", ErrMalformed)
	}
	return certs, key, nil
}

// ParseCertificate parses one certificate, PEM or DER. In PEM, the first
// CERTIFICATE block is the certificate.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	if isPEM(data) {
		certs, _, err := parsePEMCertificateFile(data, nil, false)
		if err != nil {
			return nil, err
		}
		return certs[0], nil
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c, nil
}

// ParseCertificates parses a bundle of certificates, PEM or concatenated
// DER, in the order given.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !isPEM(data) {
		certs, err := x509.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("%w: no certificates", ErrMalformed)
		}
		return certs, nil
	}
	blocks, err := pemBlocks(data)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrMalformed, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrMalformed)
	}
	return certs, nil
}

func isKeyBlock(t string) bool {
	switch t {
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return true
	}
	return false
}

// ParsePrivateKey parses a private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC),
// PEM or DER, or encrypted PKCS#8 (PBES2 with PBKDF2 or scrypt and
// AES-CBC), which needs passphrase. Only the key types IAM Roles Anywhere
// accepts are returned; others are ErrUnsupportedKey. In a PEM file, the
// first key block is the key.
func ParsePrivateKey(data, passphrase []byte) (crypto.Signer, error) {
	if isPEM(data) {
		blocks, err := pemBlocks(data)
		if err != nil {
			return nil, err
		}
		for _, b := range blocks {
			if isKeyBlock(b.Type) {
				return parseKeyBlock(b, passphrase)
			}
		}
		for _, b := range blocks {
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("%w: PEM type %q", ErrUnsupportedKey, b.Type)
			}
		}
		return nil, fmt.Errorf("%w: no private key block", ErrMalformed)
	}
	if isEncryptedPKCS8(data) {
		return parseEncrypted(data, passphrase)
	}
	if k, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return supportedKey(k)
	} else if isUnsupportedAlgorithm(err) {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if k, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return supportedKey(k)
	}
	if k, err := x509.ParseECPrivateKey(data); err == nil {
		return supportedKey(k)
	} else if strings.Contains(err.Error(), "unknown elliptic curve") {
		return nil, fmt.Errorf("%w: unknown elliptic curve", ErrUnsupportedKey)
	}
	return nil, fmt.Errorf("%w: not a PKCS#8, PKCS#1 or SEC1 private key", ErrMalformed)
}

func parseKeyBlock(b *pem.Block, passphrase []byte) (crypto.Signer, error) {
	if _, ok := b.Headers["DEK-Info"]; ok || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, ErrLegacyPEMEncryption
	}
	var k any
	var err error
	switch b.Type {
	case "ENCRYPTED PRIVATE KEY":
		return parseEncrypted(b.Bytes, passphrase)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil && isUnsupportedAlgorithm(err) {
			return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
		}
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
		if err != nil && strings.Contains(err.Error(), "unknown elliptic curve") {
			return nil, fmt.Errorf("%w: unknown elliptic curve", ErrUnsupportedKey)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s block does not parse", ErrMalformed, b.Type)
	}
	return supportedKey(k)
}

func isUnsupportedAlgorithm(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unknown private key type") || strings.Contains(s, "unknown elliptic curve") ||
		strings.Contains(s, "unsupported") || strings.Contains(s, "unknown algorithm")
}

func parseEncrypted(der, passphrase []byte) (crypto.Signer, error) {
	if len(passphrase) == 0 {
		return nil, ErrPassphraseRequired
	}
	plain, err := decryptPKCS8(der, passphrase)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		// A wrong passphrase that happened to yield valid padding. The
		// parse error is not passed on: it describes decrypted bytes.
		return nil, ErrWrongPassphrase
	}
	return supportedKey(k)
}

// ParsePKCS12 decodes a PKCS#12 bundle: the private key, the certificate
// that matches it, and the other certificates in the order of the bundle
// (self-signed roots left out: they are never sent).
func ParsePKCS12(data, passphrase []byte) (crypto.Signer, *x509.Certificate, []*x509.Certificate, error) {
	pk, first, rest, err := pkcs12.DecodeChain(data, string(passphrase))
	if err != nil {
		switch {
		case errors.Is(err, pkcs12.ErrIncorrectPassword), errors.Is(err, pkcs12.ErrDecryption):
			if len(passphrase) == 0 {
				return nil, nil, nil, ErrPassphraseRequired
			}
			return nil, nil, nil, ErrWrongPassphrase
		case strings.Contains(err.Error(), "unknown") || strings.Contains(err.Error(), "not supported") ||
			strings.Contains(err.Error(), "unsupported"):
			return nil, nil, nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, oneLine(err.Error()))
		}
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrMalformed, oneLine(err.Error()))
	}
	key, err := supportedKey(pk)
	if err != nil {
		return nil, nil, nil, err
	}
	all := append([]*x509.Certificate{first}, rest...)
	var leaf *x509.Certificate
	var chain []*x509.Certificate
	for _, c := range all {
		switch {
		case leaf == nil && publicKeysEqual(c.PublicKey, key.Public()):
			leaf = c
		case bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil:
			// a root: the trust anchor has it
		default:
			chain = append(chain, c)
		}
	}
	if leaf == nil {
		return nil, nil, nil, ErrKeyMismatch
	}
	return key, leaf, chain, nil
}

// supportedKey returns k as a crypto.Signer if IAM Roles Anywhere accepts
// its type and size.
func supportedKey(k any) (crypto.Signer, error) {
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, k)
	}
	if err := checkPublicKey(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

func checkPublicKey(pub any) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if n := p.N.BitLen(); n < 2048 || n > 4096 {
			return fmt.Errorf("%w: RSA %d bits", ErrUnsupportedKey, n)
		}
		return nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("%w: ECDSA on %s", ErrUnsupportedKey, p.Curve.Params().Name)
	case ed25519.PublicKey:
		return fmt.Errorf("%w: Ed25519", ErrUnsupportedKey)
	}
	return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// dedupChain drops the leaf and repeated certificates from a chain,
// keeping the order: a "full chain" file often starts with the leaf.
func dedupChain(leaf *x509.Certificate, chain []*x509.Certificate) []*x509.Certificate {
	seen := map[string]bool{string(leaf.Raw): true}
	out := chain[:0:0]
	for _, c := range chain {
		if !seen[string(c.Raw)] {
			seen[string(c.Raw)] = true
			out = append(out, c)
		}
	}
	return out
}
