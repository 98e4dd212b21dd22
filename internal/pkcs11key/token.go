package pkcs11key

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
			return nil, fmt.Errorf("%w: the URI names another library: the module is %q by %q, version %s", ErrNoModule, li.description, li.manufacturer, li.version)
		}
	}
	ids, err := m.slots()
	if err != nil {
		return nil, fmt.Errorf("C_GetSlotList: %w", classify(err))
	}
	out, unread := m.matchSlots(u, ids)
	// A token that failed to answer may answer once the module starts
	// again (once). SoftHSM's tokens read as absent while another process
	// writes them, and SoftHSM reads a token's state afresh only when
	// started again: with it, a URI that matches nothing is tried a few
	// times.
	restarts := 0
	if unread != nil {
		restarts = 1
	}
	if m.racy {
		restarts = 4
	}
	for try := 1; len(out) == 0 && try <= restarts; try++ {
		if m.racy {
			time.Sleep(time.Duration(try*10) * time.Millisecond)
		}
		m.restart()
		if ids, err = m.slots(); err != nil {
			return nil, fmt.Errorf("C_GetSlotList: %w", classify(err))
		}
		out, unread = m.matchSlots(u, ids)
	}
	if len(out) == 0 {
		if unread != nil {
			return nil, fmt.Errorf("%w (%d slots with a token; one did not answer: %v)", ErrNoToken, len(ids), unread)
		}
		return nil, fmt.Errorf("%w (%d slots with a token)", ErrNoToken, len(ids))
	}
	return out, nil
}

// matchSlots returns the slots whose token matches u; unread is the
// error of a slot that could not be read because its token failed (an
// uninitialised token, as SoftHSM's free slot, is not one).
func (m *module) matchSlots(u *URI, ids []uint) (out []slotInfo, unread error) {
	for _, id := range ids {
		si, err := m.slotInfo(id)
		if err != nil {
			if r := rv(0); errors.As(err, &r) && lost(r) {
				unread = err // removed meanwhile, or busy
			}
			continue
		}
		if si.tokenFlags&ckfTokenInitialized == 0 {
			continue // an empty token, as SoftHSM's free slot
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

// loginUser logs the session in as the user, unless the token needs no
// login. A locked PIN, or one with a single try left, is never sent.
func (m *module) loginUser(s uint, si slotInfo, pin []byte) error {
	if si.tokenFlags&ckfLoginRequired == 0 {
		return nil
	}
	if si.tokenFlags&ckfUserPINLocked != 0 {
		return ErrPINLocked
	}
	if si.tokenFlags&ckfUserPINFinalTry != 0 {
		return ErrPINFinalTry // a wrong PIN now would lock it
	}
	if pin == nil {
		return ErrPINRequired
	}
	if err := refused(m.path, si.token(), pin); err != nil {
		return err
	}
	err := m.login(s, ckuUser, pin)
	// SoftHSM's token file, while another process writes it, reads as a
	// token without a PIN for a moment: wait, and try again.
	for try := 1; try < 5 && errors.Is(err, ckrUserPINNotInitialized); try++ {
		time.Sleep(time.Duration(try*20) * time.Millisecond)
		err = m.login(s, ckuUser, pin)
	}
	return refuse(m.path, si.token(), pin, classify(err))
}

// refusals remembers, for the life of the process, each PIN a token
// refused (by module, token serial and label, and the PIN's SHA-256), so
// that no key or search sends it to that token again: each wrong try
// counts toward the token's lock.
var refusals = struct {
	sync.Mutex
	m map[[sha256.Size]byte]error
}{m: map[[sha256.Size]byte]error{}}

func refusalKey(module string, t Token, pin []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range [][]byte{[]byte(module), []byte(t.Serial), []byte(t.Label), pin} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		h.Write(f)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// refused is the error of the token's earlier refusal of pin, or nil.
func refused(module string, t Token, pin []byte) error {
	refusals.Lock()
	defer refusals.Unlock()
	return refusals.m[refusalKey(module, t, pin)]
}

// refuse records err when it is the token refusing pin, and returns it.
func refuse(module string, t Token, pin []byte, err error) error {
	if errors.Is(err, ErrWrongPIN) || errors.Is(err, ErrPINLocked) {
		refusals.Lock()
		refusals.m[refusalKey(module, t, pin)] = fmt.Errorf("%w (refused before: not sent again)", err)
		refusals.Unlock()
	}
	return err
}

// template matches the objects of class that u names by label and id.
func template(u *URI, class uint) map[uint][]byte {
	tmpl := map[uint][]byte{ckaClass: ulong(class)}
	if u.Object != "" {
		tmpl[ckaLabel] = []byte(u.Object)
	}
	if u.ID != nil {
		tmpl[ckaID] = u.ID
	}
	return tmpl
}

// findIn finds the objects of class that match u on one token; with
// pin, after logging in. s is an open session on the token.
func (m *module) findIn(s uint, si slotInfo, u *URI, class uint) ([]Object, error) {
	handles, err := m.find(s, template(u, class))
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

// search finds the objects of class that u names on the tokens that
// match it. The PIN goes to one token at most (each wrong one counts
// toward that token's lock): see searchKeys and searchCerts.
func (m *module) search(u *URI, class uint, pin []byte) ([]Object, error) {
	toks, err := m.tokens(u)
	if err != nil {
		return nil, err
	}
	if class == ckoCertificate {
		return m.searchCerts(u, toks, pin)
	}
	return m.searchKeys(u, toks, pin)
}

// searchKeys finds private keys without logging in first: on a token
// that needs a login, a public key or certificate with the label and id
// marks a candidate. It then logs in to the one token with candidates
// (or to the only token, when none shows any); several such tokens are
// an error that lists them, so that the URI names one.
func (m *module) searchKeys(u *URI, toks []slotInfo, pin []byte) ([]Object, error) {
	var out []Object
	var login, blind []slotInfo
	for _, si := range toks {
		found, candidate, err := m.peek(si, u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", si.token(), err)
		}
		out = append(out, found...)
		switch {
		case len(found) > 0 || si.tokenFlags&ckfLoginRequired == 0:
		case candidate:
			login = append(login, si)
		default:
			blind = append(blind, si)
		}
	}
	if len(login) == 0 && len(out) == 0 && len(blind) == 1 && len(toks) == 1 {
		login = blind
	}
	if len(login) > 1 {
		e := fmt.Errorf("%w: %d tokens that need a login hold keys it may name, and the PIN is sent to one token only", ErrAmbiguous, len(login))
		return nil, &tokensError{err: e, toks: login}
	}
	for _, si := range login {
		found, err := m.loggedIn(si, pin, func(s uint) ([]Object, error) { return m.findIn(s, si, u, ckoPrivateKey) })
		if err != nil {
			return nil, fmt.Errorf("%s: %w", si.token(), err)
		}
		out = append(out, found...)
	}
	return out, nil
}

// peek finds the private keys u names on a token without logging in,
// and reports whether a public key or certificate that u names is there.
func (m *module) peek(si slotInfo, u *URI) ([]Object, bool, error) {
	s, err := m.openSession(si.id)
	if err != nil {
		return nil, false, fmt.Errorf("open a session: %w", classify(err))
	}
	defer m.closeSession(s)
	found, err := m.findIn(s, si, u, ckoPrivateKey)
	if err != nil || len(found) > 0 || si.tokenFlags&ckfLoginRequired == 0 {
		return found, false, err
	}
	for _, class := range []uint{ckoPublicKey, ckoCertificate} {
		hs, err := m.find(s, template(u, class))
		if err != nil {
			return nil, false, fmt.Errorf("find objects: %w", classify(err))
		}
		if len(hs) > 0 {
			return nil, true, nil
		}
	}
	return nil, false, nil
}

// searchCerts finds certificates without logging in; when none shows and
// a PIN is given, it logs in to the only token that needs a login, if
// there is one only, and looks again.
func (m *module) searchCerts(u *URI, toks []slotInfo, pin []byte) ([]Object, error) {
	var out []Object
	var locked []slotInfo
	for _, si := range toks {
		found, err := m.session(si, func(s uint) ([]Object, error) { return m.findIn(s, si, u, ckoCertificate) })
		if err != nil {
			return nil, fmt.Errorf("%s: %w", si.token(), err)
		}
		out = append(out, found...)
		if si.tokenFlags&ckfLoginRequired != 0 {
			locked = append(locked, si)
		}
	}
	if len(out) > 0 || pin == nil || len(locked) != 1 {
		return out, nil
	}
	si := locked[0]
	found, err := m.loggedIn(si, pin, func(s uint) ([]Object, error) { return m.findIn(s, si, u, ckoCertificate) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", si.token(), err)
	}
	return found, nil
}

// session runs f in a new session on si's token.
func (m *module) session(si slotInfo, f func(s uint) ([]Object, error)) ([]Object, error) {
	s, err := m.openSession(si.id)
	if err != nil {
		return nil, fmt.Errorf("open a session: %w", classify(err))
	}
	defer m.closeSession(s)
	return f(s)
}

// loggedIn runs f in a new session on si's token, logged in.
func (m *module) loggedIn(si slotInfo, pin []byte, f func(s uint) ([]Object, error)) ([]Object, error) {
	return m.session(si, func(s uint) ([]Object, error) {
		if err := m.loginUser(s, si, pin); err != nil {
			return nil, err
		}
		return f(s)
	})
}

// tokensError is ErrAmbiguous among tokens; it lists them.
type tokensError struct {
	err  error
	toks []slotInfo
}

func (e *tokensError) Error() string { return e.err.Error() }
func (e *tokensError) Unwrap() error { return e.err }

// withTokens lists the tokens of a tokensError among err's candidates,
// each with a URI that names it.
func withTokens(err error) error {
	var te *tokensError
	var e *Error
	if errors.As(err, &te) && errors.As(err, &e) {
		for _, si := range te.toks {
			t := si.token()
			e.Candidates = append(e.Candidates, t.String()+": "+(&URI{Token: t.Label, Serial: t.Serial}).String())
		}
	}
	return err
}

// Hold loads and initialises the module and keeps it so until release
// is called: a program that reads certificates and opens keys one after
// another holds it first, so that the module is initialised once (each
// of them otherwise loads it and releases it).
// uri is for messages only.
func Hold(uri, module string) (release func(), err error) {
	m, err := loadModule(module)
	if err != nil {
		return nil, &Error{URI: uri, Module: module, Op: "load the module", Err: err}
	}
	var once sync.Once
	return func() { once.Do(m.release) }, nil
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
	pin := pinOf(opts)
	defer clear(pin)
	certs, err := m.search(u, ckoCertificate, pin)
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
	// PINNotSent: a PIN was given, but the URI names several tokens
	// and the PIN is sent to one token only.
	PINNotSent bool
	Objects    []Object
	Err        error // the token could not be listed
}

// List lists the certificates and keys on the tokens uri names ("pkcs11:"
// for every token). With a PIN it logs in, so that private keys show,
// when uri names one token only.
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
	pin := pinOf(opts)
	defer clear(pin)
	if len(toks) > 1 {
		pin = nil // the PIN is sent to one token only
	}
	var out []Listing
	for _, si := range toks {
		l := m.listToken(si, u, pin)
		l.PINNotSent = len(opts.PIN) > 0 && pin == nil && si.tokenFlags&ckfLoginRequired != 0
		out = append(out, l)
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
