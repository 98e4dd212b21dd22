package check

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/signer"
)

// IdentityFiles name a Roles Anywhere identity's files, as the
// --certificate, --private-key, --intermediates and --ca flags give them.
type IdentityFiles struct {
	Certificate   string
	PrivateKey    string // "" when the certificate file holds the key
	Intermediates string // optional
	// CA is the trust anchor's CA certificate (optional): with it the
	// chain is verified up to the trust anchor.
	CA         string
	Passphrase []byte        // for an encrypted key or a PKCS#12 bundle
	Key        crypto.Signer // a key not in a file (a TPM); PrivateKey names it
	// CertificateData and IntermediatesData are read instead of the
	// files when not nil (certificates on a token).
	CertificateData, IntermediatesData []byte
}

// passphraseHint says where rolesenv takes a passphrase from.
const passphraseHint = "the passphrase comes from ROLESENV_PRIVATE_KEY_PASSPHRASE or --private-key-passphrase-file"

// Identity checks the certificate and key files without any network:
// each file reads and parses, the key matches the certificate, the
// certificate's validity dates and usage, the key file's permissions, the
// intermediates' dates and order, and with f.CA the chain up to the trust
// anchor's CA. It goes on after a failure wherever the remaining checks
// have what they need.
//
// blocked is "" when CreateSession can be tried, else the name of the
// first failed check that the signer would refuse to sign over. A chain
// that does not verify against f.CA does not block: the service has the
// last word on trust, and its answer is worth seeing too.
func Identity(f IdentityFiles, now time.Time) (rows []Row, blocked string) {
	c := &identityCheck{f: f, l: load(f), now: now, keyName: f.PrivateKey}
	if c.keyName == "" {
		c.keyName = f.Certificate
	}
	c.files()
	c.certificate()
	if c.l.cert != nil && (len(c.l.chain) > 0 || f.CA != "") {
		for _, r := range chainRows(f, c.l, now) {
			c.add(r)
		}
	}
	c.signerVerdict()
	return c.rows, c.blocked
}

// identityCheck is one run of Identity: what was read, and the rows so
// far.
type identityCheck struct {
	f       IdentityFiles
	l       loaded
	now     time.Time
	keyName string // the file the key is in
	rows    []Row
	blocked string
}

// add adds a row; a failure that the signer would refuse to sign over
// blocks CreateSession (the chain to the CA does not: the service has
// the last word on trust).
func (c *identityCheck) add(r Row) {
	r.Group = Local
	c.rows = append(c.rows, r)
	if r.Status == Fail && c.blocked == "" && !strings.HasPrefix(r.Check, "chain to ") && !strings.HasPrefix(r.Check, "CA certificate") {
		c.blocked = r.Check
	}
}

// files: each file reads and parses, and the key file's permissions.
func (c *identityCheck) files() {
	f, l := c.f, c.l
	if l.certErr != nil {
		c.add(fileFailure("certificate "+f.Certificate, l.certErr))
	} else {
		c.add(Row{Check: "certificate " + f.Certificate, Status: OK,
			Detail: fmt.Sprintf("subject %s, serial %s, issued by %s", name(l.cert.Subject.String()), l.cert.SerialNumber, name(l.cert.Issuer.String()))})
	}
	switch {
	case l.keyErr != nil:
		c.add(fileFailure("private key "+c.keyName, l.keyErr))
	case l.key == nil:
		c.add(Row{Check: "private key " + c.keyName, Status: NotRun, Detail: "not read: the certificate file could not be parsed"})
	default:
		detail := keyType(l.key.Public())
		if c.keyName == f.Certificate {
			detail += ", in the certificate file"
		}
		c.add(Row{Check: "private key " + c.keyName, Status: OK, Detail: detail})
		if f.Key == nil || l.keyMode != 0 { // a key on a token or at a TPM handle has no file
			c.add(permissions(c.keyName, l.keyMode))
		}
	}
	if f.Intermediates != "" || len(l.chain) > 0 {
		c.add(intermediates(f, l, c.now))
	}
}

// certificate: the key matches it, its dates and its usage.
func (c *identityCheck) certificate() {
	l := c.l
	if l.cert == nil {
		for _, name := range []string{"key matches certificate", "certificate validity", "certificate usage"} {
			c.add(Row{Check: name, Status: NotRun, Detail: "the certificate could not be read"})
		}
		return
	}
	switch {
	case l.key == nil:
		c.add(Row{Check: "key matches certificate", Status: NotRun, Detail: "the private key could not be read"})
	case !samePublicKey(l.cert.PublicKey, l.key.Public()):
		c.add(Row{Check: "key matches certificate", Status: Fail,
			Detail: fmt.Sprintf("the private key %s does not belong to the certificate %s", c.keyName, c.f.Certificate),
			Hint:   "compare `openssl x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`"})
	default:
		c.add(Row{Check: "key matches certificate", Status: OK, Detail: "the key's public half is the certificate's"})
	}
	c.add(validity(l.cert, c.now))
	c.add(usage(l.cert))
}

// signerVerdict: the signer's own checks are the last word on what it
// will sign; if they refuse what the rows passed, say so.
func (c *identityCheck) signerVerdict() {
	if c.blocked != "" || c.l.cert == nil || c.l.key == nil {
		return
	}
	id, err := signer.NewIdentity(c.l.cert, c.l.chain, c.l.key)
	if err == nil {
		_, err = id.Check(c.now)
	}
	if err != nil {
		c.add(Row{Check: "local checks", Status: Fail, Detail: err.Error()})
	}
}

// loaded is what could be read of an identity's files.
type loaded struct {
	cert     *x509.Certificate
	key      crypto.Signer
	keyMode  os.FileMode
	chain    []*x509.Certificate // from the intermediates file or the certificate file
	certErr  error
	keyErr   error
	chainErr error
}

// load reads the files with the signer's loader, so that check accepts
// exactly what run accepts. The loader stops at the first failure; the
// files it did not get to are then read on their own, so that each file
// gets its own verdict.
func load(f IdentityFiles) loaded {
	var l loaded
	opts := signer.LoadOptions{Certificate: f.Certificate, PrivateKey: f.PrivateKey,
		Intermediates: f.Intermediates, Passphrase: f.Passphrase,
		CertificateData: f.CertificateData, IntermediatesData: f.IntermediatesData}
	if f.Key != nil {
		opts.PrivateKey, opts.Signer, opts.KeyName = "", f.Key, f.PrivateKey
	}
	id, err := signer.LoadFiles(opts)
	if err != nil && fileOf(err) == "intermediates" {
		l.chainErr = err
		opts.Intermediates = ""
		id, err = signer.LoadFiles(opts)
	}
	if err == nil {
		l.cert, l.key, l.chain = id.Certificate, id.Signer(), id.Intermediates
		l.keyMode = fileMode(id.KeyPath())
		return l
	}
	switch fileOf(err) {
	case "private key":
		l.keyErr = err
		// The certificate was read before the key: it parses alone.
		certs, rerr := readCertificates(f.Certificate)
		if rerr != nil {
			l.certErr = &signer.FileError{Path: f.Certificate, What: "certificate", Err: rerr}
		} else {
			l.cert, l.chain = certs[0], certs[1:]
		}
	default:
		l.certErr = err
		if f.Key != nil {
			l.key = f.Key
		} else if f.PrivateKey != "" && f.PrivateKey != f.Certificate {
			data, rerr := readBounded(f.PrivateKey)
			switch {
			case rerr != nil:
				l.keyErr = &signer.FileError{Path: f.PrivateKey, What: "private key", Err: rerr}
			default:
				key, perr := signer.ParsePrivateKey(data, f.Passphrase)
				if perr != nil {
					l.keyErr = &signer.FileError{Path: f.PrivateKey, What: "private key", Err: perr}
				} else {
					l.key, l.keyMode = key, fileMode(f.PrivateKey)
				}
			}
		}
	}
	if f.Intermediates != "" && l.chainErr == nil {
		if chain, rerr := readCertificates(f.Intermediates); rerr != nil {
			l.chainErr = &signer.FileError{Path: f.Intermediates, What: "intermediates", Err: rerr}
		} else {
			l.chain = append(l.chain, chain...)
		}
	}
	return l
}

// fileOf says which file a loader error is about.
func fileOf(err error) string {
	var fe *signer.FileError
	if errors.As(err, &fe) {
		if fe.What == "PKCS#12 bundle" {
			return "certificate"
		}
		return fe.What
	}
	var ce *signer.ConfigError
	if errors.As(err, &ce) {
		return ce.Field
	}
	return "certificate"
}

func fileFailure(check string, err error) Row {
	r := Row{Check: check, Status: Fail, Detail: err.Error()}
	var h exitcode.Hinter
	if errors.As(err, &h) {
		r.Hint = h.Hint()
	}
	if errors.Is(err, signer.ErrPassphraseRequired) || errors.Is(err, signer.ErrWrongPassphrase) {
		r.Hint = passphraseHint
	}
	return r
}

// readCertificates reads a file of certificates (PEM or DER) on its own,
// with errors that name the cause, not the path.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return signer.ParseCertificates(data)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, signer.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > signer.MaxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", signer.MaxFileSize)
	}
	return data, nil
}

func fileMode(path string) os.FileMode {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Mode().Perm()
}

func permissions(path string, mode os.FileMode) Row {
	r := Row{Check: "key file permissions", Status: OK, Detail: fmt.Sprintf("%s is mode %04o", path, mode)}
	if mode&0o077 != 0 {
		r.Status = Warn
		r.Detail = fmt.Sprintf("%s is readable by group or others (mode %04o)", path, mode)
		r.Hint = "chmod 600 " + path
	}
	return r
}

func validity(c *x509.Certificate, now time.Time) Row {
	r := Row{Check: "certificate validity", Status: OK}
	left := c.NotAfter.Sub(now)
	switch {
	case now.Before(c.NotBefore):
		r.Status = Fail
		r.Detail = "not valid yet: valid from " + stamp(c.NotBefore)
		r.Hint = "check the system clock, or wait until the certificate's start"
	case now.After(c.NotAfter):
		r.Status = Fail
		r.Detail = "expired at " + stamp(c.NotAfter)
		r.Hint = "renew the certificate"
	case left < signer.ExpiryWarning:
		r.Status = Warn
		r.Detail = fmt.Sprintf("expires in %s, at %s", humanDuration(left), stamp(c.NotAfter))
		r.Hint = "renew the certificate soon; rolesenv picks up a renewed file without a restart"
	default:
		r.Detail = fmt.Sprintf("valid until %s (%s left)", stamp(c.NotAfter), humanDuration(left))
	}
	return r
}

// usage checks what IAM Roles Anywhere asks of an end-entity certificate.
func usage(c *x509.Certificate) Row {
	r := Row{Check: "certificate usage", Status: Fail}
	switch {
	case c.Version != 3:
		r.Detail = fmt.Sprintf("X.509 version %d; IAM Roles Anywhere needs version 3", c.Version)
	case c.IsCA:
		r.Detail = "a CA certificate (basic constraints CA:TRUE); IAM Roles Anywhere needs an end-entity certificate"
	case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		r.Detail = "its key usage lacks digitalSignature"
	case signer.WeakSignature(c.SignatureAlgorithm):
		r.Detail = fmt.Sprintf("signed with %s; IAM Roles Anywhere needs SHA-256 or stronger", c.SignatureAlgorithm)
	default:
		r.Status = OK
		ku := "digitalSignature"
		if c.KeyUsage == 0 {
			ku = "no key usage extension (any use)"
		}
		r.Detail = fmt.Sprintf("end-entity, %s, signed with %s", ku, c.SignatureAlgorithm)
	}
	return r
}

// intermediates reports the intermediates file: read, parsed, and every
// certificate in it within its dates.
func intermediates(f IdentityFiles, l loaded, now time.Time) Row {
	check := "intermediates"
	if f.Intermediates != "" {
		check += " " + f.Intermediates
	}
	if l.chainErr != nil {
		return fileFailure(check, l.chainErr)
	}
	r := Row{Check: check, Status: OK, Detail: fmt.Sprintf("%d certificate%s, all within their dates", len(l.chain), plural(len(l.chain)))}
	if f.Intermediates == "" {
		r.Detail += ", from the certificate file"
	}
	for i, c := range l.chain {
		switch {
		case now.Before(c.NotBefore) || now.After(c.NotAfter):
			r.Status = Fail
			r.Detail = fmt.Sprintf("certificate %d (%s) is outside its dates: %s to %s", i+1, name(c.Subject.String()), stamp(c.NotBefore), stamp(c.NotAfter))
			return r
		case c.NotAfter.Sub(now) < signer.ExpiryWarning && r.Status == OK:
			r.Status = Warn
			r.Detail = fmt.Sprintf("certificate %d (%s) expires in %s, at %s", i+1, name(c.Subject.String()),
				humanDuration(c.NotAfter.Sub(now)), stamp(c.NotAfter))
		}
	}
	return r
}

// chainRows check the order of the intermediates (each issued the one
// before it, starting with the leaf's issuer) and, with f.CA, that the
// chain verifies up to the trust anchor's CA.
func chainRows(f IdentityFiles, l loaded, now time.Time) []Row {
	var rows []Row
	if len(l.chain) > 0 {
		r := Row{Check: "chain order", Status: OK}
		path := []string{name(l.cert.Subject.String())}
		issued := l.cert
		for i, c := range l.chain {
			if !bytes.Equal(issued.RawIssuer, c.RawSubject) || issued.CheckSignatureFrom(c) != nil {
				r.Status = Warn
				r.Detail = fmt.Sprintf("intermediate %d (%s) did not issue %s", i+1, name(c.Subject.String()), name(issued.Subject.String()))
				r.Hint = "list the intermediates from the leaf's issuer upwards"
				break
			}
			path = append(path, name(c.Subject.String()))
			issued = c
		}
		if r.Status == OK {
			r.Detail = strings.Join(path, " <- ")
		}
		rows = append(rows, r)
	}
	if f.CA == "" {
		return rows
	}
	cas, err := readCertificates(f.CA)
	if err != nil {
		return append(rows, Row{Check: "CA certificate " + f.CA, Status: Fail, Detail: err.Error()})
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range l.chain {
		inter.AddCert(c)
	}
	chains, err := l.cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	r := Row{Check: "chain to " + f.CA}
	if err != nil {
		r.Status = Fail
		r.Detail = "the certificate does not chain to the CA in " + f.CA + ": " + verifyError(err)
		r.Hint = "the trust anchor's CA must issue the certificate, directly or through the intermediates given with --intermediates"
		return append(rows, r)
	}
	var path []string
	for _, c := range chains[0] {
		path = append(path, name(c.Subject.String()))
	}
	r.Status, r.Detail = OK, strings.Join(path, " <- ")
	return append(rows, r)
}

// verifyError shortens crypto/x509's verification errors, which name the
// certificates already shown in the row.
func verifyError(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "signed by an unknown authority"
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		switch ci.Reason {
		case x509.Expired:
			return "a certificate of the chain is outside its dates"
		case x509.NotAuthorizedToSign:
			return "an issuer is not a CA"
		}
	}
	return strings.TrimPrefix(err.Error(), "x509: ")
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func keyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// name shows a distinguished name; an empty one (a certificate with only
// SANs) is shown as such rather than as nothing.
func name(dn string) string {
	if dn == "" {
		return "(empty subject)"
	}
	return dn
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// humanDuration rounds a duration to what an operator needs: days, hours
// or minutes.
func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
