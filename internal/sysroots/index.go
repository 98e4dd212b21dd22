package sysroots

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// index holds the system's roots as DER, by raw subject.
type index struct {
	bySubject map[string][]*root
	n         int
}

// root is one certificate of the index, parsed on first use.
type root struct {
	der  []byte
	once sync.Once
	cert *x509.Certificate // nil: it does not parse, and crypto/x509 would have skipped it
}

func (r *root) parsed() *x509.Certificate {
	r.once.Do(func() {
		r.cert, _ = x509.ParseCertificate(r.der)
		if r.cert != nil {
			r.der = nil
		}
	})
	return r.cert
}

// Len is the number of distinct certificates indexed.
func (x *index) Len() int { return x.n }

// pool returns the roots that can end a chain of certs: those whose
// subject is the issuer of one of certs, and the leaf itself if it is a
// root.
func (x *index) pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	add := func(subject []byte) {
		for _, r := range x.bySubject[string(subject)] {
			if c := r.parsed(); c != nil {
				p.AddCert(c)
			}
		}
	}
	for _, c := range certs {
		add(c.RawIssuer)
	}
	if len(certs) > 0 {
		add(certs[0].RawSubject)
	}
	return p
}

// appendPEM indexes the certificates of data that crypto/x509's
// AppendCertsFromPEM would take: CERTIFICATE blocks without headers that
// decode. A block whose subject cannot be read is left out; crypto/x509
// would not parse it either.
//
// Most of the time goes to decoding PEM, and the same certificates come
// two or three times (the bundle, then each certificate's own file, on
// Debian the bundle again from the directory). A plain file (see
// plainBlocks) is therefore split into its blocks' base64 text, and a text
// already decoded is skipped; anything else goes through encoding/pem.
func (x *index) appendPEM(data []byte, seen *seenSet) {
	bodies, ok := plainBlocks(data, func(b []byte) bool {
		_, ok := seen.text[string(b)]
		return ok
	})
	if !ok {
		x.appendDecoded(data, seen)
		return
	}
	for _, b := range bodies {
		if _, dup := seen.text[string(b)]; dup {
			continue
		}
		seen.text[string(b)] = struct{}{}
		der := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
		n, err := base64.StdEncoding.Decode(der, b)
		if err != nil {
			// encoding/pem skips such a block and goes on after its END.
			continue
		}
		x.add(der[:n], seen)
	}
}

// appendDecoded is appendPEM through encoding/pem, for any input.
func (x *index) appendDecoded(data []byte, seen *seenSet) {
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		x.add(block.Bytes, seen)
	}
}

// add indexes the certificate der unless it is there already.
func (x *index) add(der []byte, seen *seenSet) {
	if _, dup := seen.der[string(der)]; dup {
		return
	}
	subject, ok := rawSubject(der)
	if !ok {
		return
	}
	seen.der[string(der)] = struct{}{}
	x.bySubject[string(subject)] = append(x.bySubject[string(subject)], &root{der: der})
	x.n++
}

// seenSet is what appendPEM has read already: base64 texts of blocks and
// certificates.
type seenSet struct {
	text map[string]struct{}
	der  map[string]struct{}
}

func newSeenSet() *seenSet {
	return &seenSet{text: map[string]struct{}{}, der: map[string]struct{}{}}
}

const (
	beginCert = "-----BEGIN CERTIFICATE-----"
	endCert   = "-----END CERTIFICATE-----"
)

// plainBlocks returns the base64 text of each block of data when data is
// plain: lines (ending in LF or CRLF) that are, outside a block, text
// without "-----", and blocks made of a line beginCert, one or more lines
// of base64 characters alone, and a line endCert. For such data
// encoding/pem finds exactly these blocks, with no headers, and decodes
// each text with base64's standard encoding, which ignores line ends.
// ok is false for anything else (other block types, headers, spaces,
// empty or unterminated blocks), which then goes through encoding/pem.
//
// A text for which known is true has been checked before: it is not
// checked again.
func plainBlocks(data []byte, known func([]byte) bool) (bodies [][]byte, ok bool) {
	for pos := 0; ; {
		i := bytes.Index(data[pos:], dashes)
		if i < 0 {
			return bodies, true
		}
		i += pos
		begin, start := lineAt(data, i)
		if string(begin) != beginCert {
			return nil, false
		}
		j := bytes.Index(data[start:], dashes)
		if j <= 0 {
			return nil, false
		}
		j += start
		end, next := lineAt(data, j)
		if string(end) != endCert {
			return nil, false
		}
		body := data[start:j]
		if !known(body) && !isBase64Lines(body) {
			return nil, false
		}
		bodies = append(bodies, body)
		pos = next
	}
}

var dashes = []byte("-----")

// lineAt returns the line that starts at i, without its LF or CRLF (a CR
// at the very end of data stays, as encoding/pem keeps it), and
// where the next line starts; the line is empty if i is not at the start
// of a line.
func lineAt(data []byte, i int) (line []byte, next int) {
	if i > 0 && data[i-1] != '\n' {
		return nil, i
	}
	n := bytes.IndexByte(data[i:], '\n')
	if n < 0 {
		// The last line: encoding/pem keeps a CR that no LF follows.
		return data[i:], len(data)
	}
	line, next = data[i:i+n], i+n+1
	if k := len(line); k > 0 && line[k-1] == '\r' {
		line = line[:k-1]
	}
	return line, next
}

// isBase64Lines reports whether body is one or more lines, each ending in
// LF or CRLF, of base64's standard alphabet and padding alone.
func isBase64Lines(body []byte) bool {
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return false
	}
	lineStart := true
	for i, c := range body {
		switch {
		case c == '\n':
			if lineStart {
				return false // an empty line
			}
			lineStart = true
		case c == '\r':
			if i+1 >= len(body) || body[i+1] != '\n' || lineStart {
				return false
			}
		case base64Char[c]:
			lineStart = false
		default:
			return false
		}
	}
	return true
}

// base64Char holds base64's standard alphabet and its padding.
var base64Char = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = true
	}
	return t
}()

// rawSubject reads the DER of a certificate's subject (what
// x509.Certificate.RawSubject holds) without parsing the rest.
func rawSubject(der []byte) ([]byte, bool) {
	in := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, asn1.SEQUENCE) || !cert.ReadASN1(&tbs, asn1.SEQUENCE) {
		return nil, false
	}
	var subject cryptobyte.String
	ok := tbs.SkipOptionalASN1(asn1.Tag(0).Constructed().ContextSpecific()) && // version
		tbs.SkipASN1(asn1.INTEGER) && // serialNumber
		tbs.SkipASN1(asn1.SEQUENCE) && // signature
		tbs.SkipASN1(asn1.SEQUENCE) && // issuer
		tbs.SkipASN1(asn1.SEQUENCE) && // validity
		tbs.ReadASN1Element(&subject, asn1.SEQUENCE)
	return subject, ok
}

// The places crypto/x509 reads on Linux (root_linux.go), and the variables
// that replace them (root_unix.go).
var (
	certFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	certDirectories = []string{
		"/etc/ssl/certs",
		"/etc/pki/tls/certs",
	}
)

const (
	certFileEnv = "SSL_CERT_FILE"
	certDirEnv  = "SSL_CERT_DIR"
)

// load reads the system's roots as crypto/x509 does on Linux: the first
// bundle file that can be read (SSL_CERT_FILE replaces the list), then
// every file of each certificate directory (SSL_CERT_DIR, colon-separated,
// replaces the list) except links to a file of the same directory. The
// error is the first that is not a missing file, returned only when no
// certificate was found, as crypto/x509 does.
func load(getenv func(string) string) (*index, error) {
	x := &index{bySubject: map[string][]*root{}}
	seen := newSeenSet()
	files := certFiles
	if f := getenv(certFileEnv); f != "" {
		files = []string{f}
	}
	var firstErr error
	for _, file := range files {
		data, err := readFile(file)
		if err == nil {
			x.appendPEM(data, seen)
			break
		}
		if firstErr == nil && !os.IsNotExist(err) {
			firstErr = err
		}
	}
	dirs := certDirectories
	if d := getenv(certDirEnv); d != "" {
		dirs = strings.Split(d, ":")
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if firstErr == nil && !os.IsNotExist(err) {
				firstErr = err
			}
			continue
		}
		for _, e := range entries {
			if sameDirLink(e, dir) {
				continue
			}
			if data, err := readFile(dir + "/" + e.Name()); err == nil {
				x.appendPEM(data, seen)
			}
		}
	}
	if x.n > 0 || firstErr == nil {
		return x, nil
	}
	return nil, firstErr
}

// sameDirLink reports whether e is a symbolic link to a file of the same
// directory (the hash links of c_rehash), which crypto/x509 skips.
func sameDirLink(e fs.DirEntry, dir string) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	target, err := os.Readlink(filepath.Join(dir, e.Name()))
	return err == nil && !strings.Contains(target, "/")
}
