package pkcs11key

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Options say which module to use and how to log in to the token.
type Options struct {
	// Module is the path of the PKCS#11 module (a shared library).
	Module string
	// PIN is the token's user PIN; nil when none was given.
	PIN []byte
	// ReusePIN sends PIN again for the context-specific login that keys
	// with CKA_ALWAYS_AUTHENTICATE (PIV signing keys) ask for before
	// each signature.
	ReusePIN bool
	// Public is the certificate's public key, if known: among several
	// keys that match a URI, the one it belongs to is chosen, and a key
	// that does not match it is refused.
	Public crypto.PublicKey
}

// Token describes a token as the module reports it.
type Token struct {
	Label, Manufacturer, Model, Serial string
	Slot                               uint
}

func (t Token) String() string {
	return fmt.Sprintf("token %q (serial %s, model %s, slot %d)", t.Label, t.Serial, t.Model, t.Slot)
}

// Object is an object on a token.
type Object struct {
	Class string // cert, private or public, as in a URI's type
	Label string
	ID    []byte
	Token Token
	// Certificate is a certificate object's DER value.
	Certificate []byte

	handle uint
}

// URI is a URI that names the object alone on its token.
func (o Object) URI() string {
	u := &URI{Token: o.Token.Label, Serial: o.Token.Serial, Model: o.Token.Model,
		Manufacturer: o.Token.Manufacturer, Object: o.Label, ID: o.ID, Type: o.Class}
	return u.String()
}

// KeyURI names the private key beside a certificate: on its token, with
// its id (or its label when it has no id), as the official helper pairs
// them.
func (o Object) KeyURI() string {
	u := &URI{Token: o.Token.Label, Serial: o.Token.Serial, Type: "private"}
	if len(o.ID) > 0 {
		u.ID = o.ID
	} else {
		u.Object = o.Label
	}
	return u.String()
}

// String names the object and its token.
func (o Object) String() string {
	return fmt.Sprintf("%s object %q id %s on %s", o.Class, o.Label, idString(o.ID), o.Token)
}

func idString(id []byte) string {
	if len(id) == 0 {
		return "(none)"
	}
	return escapeAll(id)
}

var classNames = map[uint]string{ckoCertificate: "cert", ckoPrivateKey: "private", ckoPublicKey: "public"}

// tokens lists the tokens that match u's token, slot and library
// attributes.
func (m *module) tokens(u *URI) ([]slotInfo, error) {
	if u.LibraryManufacturer != "" || u.LibraryDescription != "" || u.LibraryVersion != "" {
		li, err := m.info()
		if err != nil {
			return nil, fmt.Errorf("C_GetInfo: %w", err)
		}
		if !matches(u.LibraryManufacturer, li.manufacturer) || !matches(u.LibraryDescription, li.description) ||
			!versionMatches(u.LibraryVersion, li.version) {
			return nil, fmt.Errorf("%w: the module is %q by %q, version %s", ErrNoToken, li.description, li.manufacturer, li.version)
		}
	}
	var out []slotInfo
	var ids []uint
	var unread error
	// A token that another process is writing to may not answer for a
	// moment: a URI that matched nothing is tried again, a few times.
	for try := 0; try < 5 && len(out) == 0; try++ {
		if try > 0 && unread == nil {
			break
		}
		if try > 0 {
			// Modules such as SoftHSM keep what they read of a token's
			// state: start the module again to read it afresh.
			time.Sleep(time.Duration(try*20) * time.Millisecond)
			m.restart()
		}
		var err error
		if ids, err = m.slots(); err != nil {
			return nil, fmt.Errorf("C_GetSlotList: %w", classify(err))
		}
		out, unread = m.matchSlots(u, ids)
	}
	if len(out) == 0 {
		if unread != nil {
			return nil, fmt.Errorf("%w (%d tokens present; one did not answer: %v)", ErrNoToken, len(ids), unread)
		}
		return nil, fmt.Errorf("%w (%d tokens present)", ErrNoToken, len(ids))
	}
	return out, nil
}

// matchSlots returns the slots whose token matches u; unread is an error
// of a slot that could not be read.
func (m *module) matchSlots(u *URI, ids []uint) (out []slotInfo, unread error) {
	for _, id := range ids {
		si, err := m.slotInfo(id)
		if err != nil {
			unread = err
			continue // removed meanwhile, or busy
		}
		if si.tokenFlags&ckfTokenInitialized == 0 {
			// An empty token, as SoftHSM's free slot, or one that
			// another process is writing to.
			unread = fmt.Errorf("slot %d: the token is not initialised", id)
			continue
		}
		if u.SlotID != nil && uint64(id) != *u.SlotID || !matches(u.SlotDescription, si.description) ||
			!matches(u.SlotManufacturer, si.manufacturer) || !matches(u.Token, si.label) ||
			!matches(u.Manufacturer, si.tokenManufacturer) || !matches(u.Model, si.model) || !matches(u.Serial, si.serial) {
			continue
		}
		out = append(out, si)
	}
	return out, unread
}

func matches(want, have string) bool { return want == "" || want == have }

// versionMatches compares "2" or "2.5" with a version "2.5".
func versionMatches(want, have string) bool {
	if want == "" || want == have {
		return true
	}
	if _, err := strconv.Atoi(want); err == nil {
		return want+".0" == have || bytes.HasPrefix([]byte(have), []byte(want+"."))
	}
	return false
}

func (si slotInfo) token() Token {
	return Token{Label: si.label, Manufacturer: si.tokenManufacturer, Model: si.model, Serial: si.serial, Slot: si.id}
}

// login logs the session in as the user, unless the token needs no
// login. A locked PIN is never sent.
func (m *module) loginUser(s uint, si slotInfo, pin []byte) error {
	if si.tokenFlags&ckfLoginRequired == 0 {
		return nil
	}
	if si.tokenFlags&ckfUserPINLocked != 0 {
		return ErrPINLocked
	}
	if pin == nil {
		return ErrPINRequired
	}
	err := m.login(s, ckuUser, pin)
	// SoftHSM's token file, while another process writes it, reads as a
	// token without a PIN for a moment: wait, and try again.
	for try := 1; try < 5 && errors.Is(err, ckrUserPINNotInitialized); try++ {
		time.Sleep(time.Duration(try*20) * time.Millisecond)
		err = m.login(s, ckuUser, pin)
	}
	return classify(err)
}

// findIn finds the objects of class that match u on one token; with
// pin, after logging in. s is an open session on the token.
func (m *module) findIn(s uint, si slotInfo, u *URI, class uint) ([]Object, error) {
	tmpl := map[uint][]byte{ckaClass: ulong(class)}
	if u.Object != "" {
		tmpl[ckaLabel] = []byte(u.Object)
	}
	if u.ID != nil {
		tmpl[ckaID] = u.ID
	}
	handles, err := m.find(s, tmpl)
	if err != nil {
		return nil, fmt.Errorf("find objects: %w", classify(err))
	}
	var out []Object
	for _, h := range handles {
		o := Object{Class: classNames[class], Token: si.token(), handle: h}
		types := []uint{ckaLabel, ckaID}
		if class == ckoCertificate {
			types = append(types, ckaValue)
		}
		a, err := m.attrs(s, h, types...)
		if err != nil {
			return nil, fmt.Errorf("read attributes: %w", classify(err))
		}
		o.Label, o.ID = string(a[0]), a[1]
		if class == ckoCertificate {
			o.Certificate = a[2]
		}
		out = append(out, o)
	}
	return out, nil
}

// search finds the objects of class that u names on every token that
// matches it. Private keys are found after logging in; certificates
// without, and after logging in when none are found and a PIN is given.
func (m *module) search(u *URI, class uint, pin []byte) ([]Object, error) {
	toks, err := m.tokens(u)
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, si := range toks {
		found, err := m.searchToken(si, u, class, pin)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", si.token(), err)
		}
		out = append(out, found...)
	}
	return out, nil
}

func (m *module) searchToken(si slotInfo, u *URI, class uint, pin []byte) ([]Object, error) {
	s, err := m.openSession(si.id)
	if err != nil {
		return nil, fmt.Errorf("open a session: %w", classify(err))
	}
	defer m.closeSession(s)
	if class != ckoCertificate {
		if err := m.loginUser(s, si, pin); err != nil {
			return nil, err
		}
		return m.findIn(s, si, u, class)
	}
	found, err := m.findIn(s, si, u, class)
	if err != nil || len(found) > 0 || pin == nil || si.tokenFlags&ckfLoginRequired == 0 {
		return found, err
	}
	if err := m.loginUser(s, si, pin); err != nil {
		return nil, err
	}
	return m.findIn(s, si, u, class)
}

// Certificates returns the certificates uri names, in the order the
// token lists them; none is an error.
func Certificates(uri string, opts Options) ([]Object, error) {
	fail := func(err error) error { return &Error{URI: uri, Module: opts.Module, Op: "find certificates", Err: err} }
	u, err := ParseURI(uri)
	if err != nil {
		return nil, fail(err)
	}
	if u.Type != "" && u.Type != "cert" {
		return nil, fail(fmt.Errorf("%w: type=%s names no certificate", ErrBadURI, u.Type))
	}
	m, err := loadModule(opts.Module)
	if err != nil {
		return nil, fail(err)
	}
	defer m.release()
	certs, err := m.search(u, ckoCertificate, opts.PIN)
	if err != nil {
		return nil, fail(err)
	}
	if len(certs) == 0 {
		return nil, fail(ErrNoObject)
	}
	return certs, nil
}

// Certificate returns the one certificate uri names: none, or more than
// one, is an error (the latter lists them).
func Certificate(uri string, opts Options) (*Object, error) {
	certs, err := Certificates(uri, opts)
	if err != nil {
		return nil, err
	}
	if len(certs) > 1 {
		return nil, ambiguous(uri, opts.Module, "find the certificate", certs)
	}
	return &certs[0], nil
}

func ambiguous(uri, module, op string, objs []Object) error {
	e := &Error{URI: uri, Module: module, Op: op, Err: fmt.Errorf("%w (%d)", ErrAmbiguous, len(objs))}
	for _, o := range objs {
		e.Candidates = append(e.Candidates, o.String()+": "+o.URI())
	}
	return e
}

// Listing is what List found on one token.
type Listing struct {
	Token    Token
	LoggedIn bool
	Objects  []Object
	Err      error // the token could not be listed
}

// List lists the certificates and keys on the tokens uri names ("pkcs11:"
// for every token). With a PIN it logs in, so that private keys show.
func List(uri string, opts Options) ([]Listing, error) {
	fail := func(err error) error { return &Error{URI: uri, Module: opts.Module, Op: "list", Err: err} }
	u, err := ParseURI(uri)
	if err != nil {
		return nil, fail(err)
	}
	m, err := loadModule(opts.Module)
	if err != nil {
		return nil, fail(err)
	}
	defer m.release()
	toks, err := m.tokens(u)
	if err != nil {
		return nil, fail(err)
	}
	var out []Listing
	for _, si := range toks {
		out = append(out, m.listToken(si, u, opts.PIN))
	}
	return out, nil
}

func (m *module) listToken(si slotInfo, u *URI, pin []byte) Listing {
	l := Listing{Token: si.token()}
	s, err := m.openSession(si.id)
	if err != nil {
		l.Err = classify(err)
		return l
	}
	defer m.closeSession(s)
	if pin != nil {
		if l.Err = m.loginUser(s, si, pin); l.Err != nil {
			return l
		}
		l.LoggedIn = si.tokenFlags&ckfLoginRequired != 0
	}
	for _, class := range []uint{ckoCertificate, ckoPrivateKey, ckoPublicKey} {
		if t := map[uint]string{ckoCertificate: "cert", ckoPrivateKey: "private", ckoPublicKey: "public"}[class]; u.Type != "" && u.Type != t {
			continue
		}
		found, err := m.findIn(s, si, u, class)
		if err != nil {
			l.Err = err
			return l
		}
		l.Objects = append(l.Objects, found...)
	}
	return l
}

// ParsedCertificate parses a certificate object's value.
func (o Object) ParsedCertificate() (*x509.Certificate, error) {
	return x509.ParseCertificate(o.Certificate)
}
