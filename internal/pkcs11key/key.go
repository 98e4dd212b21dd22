package pkcs11key

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"
	"unsafe"
)

// Key is a private key on a token as a crypto.Signer. It is safe for
// concurrent use: signatures take turns on the key's one session.
type Key struct {
	m        *module
	uri      string
	obj      Object // the key as found: its token, label and id
	pin      []byte
	reusePIN bool
	pub      crypto.PublicKey
	always   bool // CKA_ALWAYS_AUTHENTICATE
	ec       bool // CKA_KEY_TYPE is CKK_EC (else CKK_RSA): it chooses the mechanism

	mu     sync.Mutex
	sess   uint
	handle uint
	open   bool
	gen    uint64 // the module's generation when the session opened
	ready  bool   // opened once: a token missing later is gone, not misnamed
}

// Open finds the private key uri names, logs in and proves that it signs:
// it signs a random digest and verifies the signature with the key's
// public key (the certificate's when given), so a wrong PIN, a missing
// or ambiguous key and a key of another certificate are found now. Close
// releases the module.
func Open(uri string, opts Options) (*Key, error) {
	k := &Key{uri: uri, pin: pinOf(opts), reusePIN: opts.ReusePIN}
	u, err := ParseURI(uri)
	if err != nil {
		return nil, k.err("open", err, opts.Module)
	}
	if u.Type != "" && u.Type != "private" {
		return nil, k.err("open", fmt.Errorf("%w: type=%s names no private key", ErrBadURI, u.Type), opts.Module)
	}
	if k.m, err = loadModule(opts.Module); err != nil {
		return nil, k.err("open", err, opts.Module)
	}
	err = k.choose(u, opts.Public)
	if errors.Is(err, ErrTokenGone) {
		// A token that another process is writing to (SoftHSM's files)
		// may fail for a moment: start the module again and look again.
		time.Sleep(30 * time.Millisecond)
		k.m.restart()
		err = k.choose(u, opts.Public)
	}
	if err != nil {
		k.m.release()
		return nil, err
	}
	if err := k.probe(); err != nil {
		k.Close()
		return nil, err
	}
	k.ready = true
	return k, nil
}

// pinOf is a copy of opts.PIN; an empty PIN is no PIN.
func pinOf(opts Options) []byte {
	if len(opts.PIN) == 0 {
		return nil
	}
	return bytes.Clone(opts.PIN)
}

// choose finds the key among the objects u names: the only one, or the
// only one whose public key is want.
func (k *Key) choose(u *URI, want crypto.PublicKey) error {
	found, err := k.m.search(u, ckoPrivateKey, k.pin)
	if err != nil {
		return withTokens(k.err("find the key", err, ""))
	}
	type cand struct {
		o Object
		keyInfo
	}
	var all, fit []cand
	for _, o := range found {
		info, err := k.describe(o)
		if err != nil {
			return k.err("read the key", err, "")
		}
		c := cand{o, info}
		all = append(all, c)
		// A key whose public half the token does not show fits a
		// certificate of its type.
		if want == nil || info.pub == nil && sameType(info.typ, want) || samePublic(info.pub, want) {
			fit = append(fit, c)
		}
	}
	switch {
	case len(all) == 0:
		return k.err("find the key", ErrNoObject, "")
	case len(fit) == 0 && len(all) == 1:
		k.obj = all[0].o
		return k.err("open", ErrMismatch, "")
	case len(fit) == 0:
		return k.err("find the key", fmt.Errorf("%w among the %d keys the URI names", ErrMismatch, len(all)), "")
	case len(fit) > 1:
		objs := make([]Object, len(fit))
		for i, c := range fit {
			objs[i] = c.o
		}
		return ambiguous(k.uri, k.m.path, "find the key", objs)
	}
	k.obj, k.pub, k.always, k.ec = fit[0].o, fit[0].pub, fit[0].always, fit[0].typ == ckkEC
	if k.pub == nil {
		k.pub = want
	}
	if k.pub == nil {
		return k.err("open", fmt.Errorf("%w: the token holds no public key for it; give the certificate", ErrUnsupported), "")
	}
	return nil
}

// keyInfo is what a private key's attributes say: its public key (nil
// when the token does not show it), its type (CKA_KEY_TYPE) and whether
// it asks for a context-specific login.
type keyInfo struct {
	pub    crypto.PublicKey
	typ    uint
	always bool
}

// sameType reports whether a key of PKCS#11 type typ can be pub's.
func sameType(typ uint, pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *rsa.PublicKey:
		return typ == ckkRSA
	case *ecdsa.PublicKey:
		return typ == ckkEC
	}
	return false
}

// describe reads a private key's keyInfo.
func (k *Key) describe(o Object) (keyInfo, error) {
	var pub crypto.PublicKey
	var always bool
	var typ uint
	err := k.withSession(o.Token, func(s uint, si slotInfo) error {
		hs, err := k.m.find(s, map[uint][]byte{ckaClass: ulong(ckoPrivateKey), ckaLabel: []byte(o.Label), ckaID: o.ID})
		if err != nil || len(hs) == 0 {
			return fmt.Errorf("%w: the key went away", ErrTokenGone)
		}
		a, err := k.m.attrs(s, hs[0], ckaKeyType, ckaModulus, ckaPublicExponent, ckaECParams, ckaAlwaysAuthenticate)
		if err != nil {
			return classify(err)
		}
		always = len(a[4]) == 1 && a[4][0] != 0
		typ, _ = toUlong(a[0])
		switch {
		case typ == ckkRSA && a[1] != nil && a[2] != nil:
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(a[1]), E: int(new(big.Int).SetBytes(a[2]).Int64())}
		case typ == ckkEC:
			pub, err = k.ecPublic(s, o, a[3])
			return err
		case typ != ckkRSA:
			return fmt.Errorf("%w: key type 0x%x (RSA and EC only)", ErrUnsupported, typ)
		}
		return nil
	})
	return keyInfo{pub, typ, always}, err
}

// ecPublic reads the EC point of the public key object with the private
// key's id; nil when there is none.
func (k *Key) ecPublic(s uint, o Object, params []byte) (crypto.PublicKey, error) {
	curve, err := curveOf(params)
	if err != nil {
		return nil, err
	}
	hs, err := k.m.find(s, map[uint][]byte{ckaClass: ulong(ckoPublicKey), ckaID: o.ID})
	if err != nil || len(hs) != 1 {
		return nil, nil
	}
	a, err := k.m.attrs(s, hs[0], ckaECPoint)
	if err != nil || a[0] == nil {
		return nil, nil
	}
	point := a[0]
	var inner []byte // CKA_EC_POINT is a DER OCTET STRING, or raw in some modules
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		point = inner
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, nil
	}
	return pub, nil
}

var curveOIDs = map[string]elliptic.Curve{
	"1.2.840.10045.3.1.7": elliptic.P256(), "1.3.132.0.34": elliptic.P384(), "1.3.132.0.35": elliptic.P521(),
}

func curveOf(params []byte) (elliptic.Curve, error) {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		return nil, fmt.Errorf("%w: EC parameters that are not a named curve", ErrUnsupported)
	}
	c, ok := curveOIDs[oid.String()]
	if !ok {
		return nil, fmt.Errorf("%w: curve %s (P-256, P-384 and P-521 only)", ErrUnsupported, oid)
	}
	return c, nil
}

func samePublic(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// withSession runs f in a new session on the token t, logged in.
func (k *Key) withSession(t Token, f func(s uint, si slotInfo) error) error {
	si, err := k.m.slotInfo(t.Slot)
	if err != nil {
		return classify(err)
	}
	s, err := k.m.openSession(t.Slot)
	if err != nil {
		return classify(err)
	}
	defer k.m.closeSession(s)
	if err := k.m.loginUser(s, si, k.pin); err != nil {
		return err
	}
	return f(s, si)
}

// probe signs a random digest and verifies the signature.
func (k *Key) probe() error {
	d := make([]byte, 32)
	_, _ = rand.Read(d)
	sig, err := k.Sign(nil, d, crypto.SHA256)
	if err != nil {
		return err
	}
	okSig := false
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		okSig = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d, sig) == nil
	case *ecdsa.PublicKey:
		okSig = ecdsa.VerifyASN1(pub, d, sig)
	}
	if !okSig {
		return k.err("sign", fmt.Errorf("%w: its signature does not verify with the certificate's public key", ErrMismatch), "")
	}
	return nil
}

// Public returns the key's public key (*rsa.PublicKey or *ecdsa.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Object is the key's object: its token, label and id.
func (k *Key) Object() Object {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.obj
}

// String names the key and its token; GoString and Format print the
// same, never the PIN.
func (k *Key) String() string { return "PKCS#11 key " + k.Object().String() }

func (k *Key) GoString() string { return k.String() }

func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// Close ends the key's session and releases the module.
func (k *Key) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		return
	}
	k.closeLocked()
	k.m.release()
	k.m = nil
	clear(k.pin)
}

func (k *Key) closeLocked() {
	if k.open {
		k.m.closeSession(k.sess)
		k.open = false
	}
}

func (k *Key) err(op string, err error, module string) error {
	if module == "" && k.m != nil {
		module = k.m.path
	}
	if k.ready && errors.Is(err, ErrNoToken) {
		err = fmt.Errorf("%w: %w", ErrTokenGone, err) // it was there when the key was opened
	}
	return &Error{URI: k.uri, Module: module, Op: op, Err: err}
}

// Sign signs digest on the token: ECDSA (ASN.1 DER) for EC keys; PKCS#1
// v1.5, or PSS when opts is *rsa.PSSOptions (salt as long as the hash),
// for RSA. rand is not used. A session the token lost (removed and put
// back, restarted) is opened again, once per signature.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	mech, data, err := k.mechanism(digest, opts)
	if err != nil {
		return nil, k.err("sign", err, "")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		return nil, k.err("sign", errors.New("the key is closed"), "")
	}
	var sig []byte
	for attempt := 0; attempt < 2; attempt++ {
		if err = k.ensureSession(); err == nil {
			sig, err = k.m.sign(k.sess, k.handle, mech, data, k.contextLogin())
			if err == nil {
				break
			}
			err = classify(err)
			// Closing the session ends an operation the failure may have
			// left active; the next attempt, or signature, opens another.
			k.closeLocked()
		}
		if !errors.Is(err, ErrTokenGone) && !errors.Is(err, ErrNoToken) {
			break
		}
	}
	if err != nil {
		return nil, k.err("sign", err, "") // a refused PIN is not sent again: see refusals
	}
	if k.ec {
		return ecdsaDER(sig)
	}
	return sig, nil
}

// ensureSession opens a session on the key's token and logs in, finding
// the token by its label and serial and the key by its label and id, as
// a token put back may sit in another slot with new handles.
func (k *Key) ensureSession() error {
	if k.open && k.gen != k.m.gen.Load() {
		// The module started again since: the handles are stale, and
		// closing the session could close another key's.
		k.open = false
	}
	if k.open {
		return nil
	}
	gen := k.m.gen.Load()
	u := &URI{Token: k.obj.Token.Label, Serial: k.obj.Token.Serial, Model: k.obj.Token.Model}
	toks, err := k.m.tokens(u)
	if errors.Is(err, ErrNoToken) {
		// The token was there: modules such as SoftHSM see one put back
		// only once started again.
		k.m.restart()
		toks, err = k.m.tokens(u)
	}
	if err != nil {
		return err // ErrNoToken: k.err says that the token went away
	}
	si := toks[0]
	s, err := k.m.openSession(si.id)
	if err != nil {
		return classify(err)
	}
	if err := k.m.loginUser(s, si, k.pin); err != nil {
		k.m.closeSession(s)
		return err
	}
	hs, err := k.m.find(s, map[uint][]byte{ckaClass: ulong(ckoPrivateKey), ckaLabel: []byte(k.obj.Label), ckaID: k.obj.ID})
	if err == nil && len(hs) != 1 {
		err = fmt.Errorf("%w: %d keys with the label and id found on the token", ErrNoObject, len(hs))
	}
	if err != nil {
		k.m.closeSession(s)
		return classify(err)
	}
	k.obj.Token.Slot = si.id
	k.sess, k.handle, k.open, k.gen = s, hs[0], true, gen
	return nil
}

// contextLogin is the context-specific login of a key that asks for one.
func (k *Key) contextLogin() func() error {
	if !k.always {
		return nil
	}
	return func() error {
		if !k.reusePIN || k.pin == nil {
			return ErrContextPIN
		}
		if err := refused(k.m.path, k.obj.Token, k.pin); err != nil {
			return err
		}
		return refuse(k.m.path, k.obj.Token, k.pin, classify(k.m.login(k.sess, ckuContextSpecific, k.pin)))
	}
}

// digestInfo prefixes: the DER of a DigestInfo up to the digest (RFC 8017,
// section 9.2, note 1).
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// pssParams are CK_RSA_PKCS_PSS_PARAMS per hash: hashAlg, mgf, sLen.
var pssParams = map[crypto.Hash][3]uint{
	crypto.SHA256: {ckmSHA256, ckgMGF1SHA256, 32},
	crypto.SHA384: {ckmSHA384, ckgMGF1SHA384, 48},
	crypto.SHA512: {ckmSHA512, ckgMGF1SHA512, 64},
}

// mechanism chooses the mechanism and the data to sign for digest.
func (k *Key) mechanism(digest []byte, opts crypto.SignerOpts) (*mechanism, []byte, error) {
	h := opts.HashFunc()
	prefix, ok := digestInfo[h]
	if !ok {
		return nil, nil, fmt.Errorf("%w: hash %v (SHA-256, SHA-384 or SHA-512 only)", ErrUnsupported, h)
	}
	if len(digest) != h.Size() {
		return nil, nil, fmt.Errorf("the digest is %d bytes, not %d", len(digest), h.Size())
	}
	if k.ec {
		return &mechanism{mech: ckmECDSA}, digest, nil
	}
	if pss, isPSS := opts.(*rsa.PSSOptions); isPSS {
		if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != h.Size() {
			return nil, nil, fmt.Errorf("%w: a PSS salt of %d bytes (as long as the hash only)", ErrUnsupported, pss.SaltLength)
		}
		p := pssParams[h]
		params := &[3]uint{p[0], p[1], p[2]}
		return &mechanism{mech: ckmRSAPKCSPSS, param: unsafe.Pointer(params), len: uint(unsafe.Sizeof(*params))}, digest, nil
	}
	return &mechanism{mech: ckmRSAPKCS}, append(bytes.Clone(prefix), digest...), nil
}

// ecdsaDER turns PKCS#11's r||s into the ASN.1 DER that crypto.Signer
// promises.
func ecdsaDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("the token's ECDSA signature is %d bytes, not r||s", len(raw))
	}
	n := len(raw) / 2
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:n]), new(big.Int).SetBytes(raw[n:])})
}
