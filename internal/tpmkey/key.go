package tpmkey

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

// DefaultDevice is the kernel's TPM resource manager.
const DefaultDevice = "/dev/tpmrm0"

// HandlePrefix starts a key named by its persistent handle.
const HandlePrefix = "handle:"

// Options say which TPM to use and how to authorise the key.
type Options struct {
	// Device is a TPM character device or the Unix socket of a software
	// TPM; "" means DefaultDevice.
	Device string
	// Password is the key's password; nil when none was given.
	Password []byte
	// NoPassword says that the key has none, whatever the key file says.
	NoPassword bool
}

// Key is a TPM key as a crypto.Signer. It is safe for concurrent use.
type Key struct {
	name   string // the key as named, for messages
	device string
	handle tpm2.TPMHandle // a persistent key; 0 for a key file
	file   *KeyFile
	auth   []byte
	pub    crypto.PublicKey
	tpmPub []byte // the key's TPMT_PUBLIC, to notice a handle that changed

	ready bool // opened: the device was there

	mu      sync.Mutex
	refused error // the TPM refused the password: never send it again
}

// Recognize reports whether ref names a TPM key: a handle:0x... reference
// or a file in the TSS2 PEM form. A file that cannot be read is not one.
func Recognize(ref string) bool {
	if strings.HasPrefix(ref, HandlePrefix) {
		return true
	}
	f, err := os.Open(ref)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	return IsKeyFile(head[:n])
}

// ParseHandle parses "handle:0x81000001". The number is hexadecimal,
// with or without 0x, as the official Roles Anywhere helper reads it;
// only persistent handles are keys.
func ParseHandle(ref string) (tpm2.TPMHandle, error) {
	s, ok := strings.CutPrefix(ref, HandlePrefix)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not %s0x81nnnnnn", ErrUnsupported, ref, HandlePrefix)
	}
	if t, ok := strings.CutPrefix(s, "0x"); ok {
		s = t
	} else if t, ok := strings.CutPrefix(s, "0X"); ok {
		s = t
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || !persistent(tpm2.TPMHandle(v)) {
		return 0, fmt.Errorf("%w: %q is not a persistent handle (hexadecimal, 0x81000000 to 0x81FFFFFF)", ErrUnsupported, ref)
	}
	return tpm2.TPMHandle(v), nil
}

// Open prepares the key ref names (see Recognize) and proves that it
// signs: it signs a random digest on the TPM and verifies the signature,
// so a wrong password, a missing key or an unreachable TPM is found now.
func Open(ref string, opts Options) (*Key, error) {
	k := &Key{name: ref, device: opts.Device}
	if k.device == "" {
		k.device = DefaultDevice
	}
	if err := k.prepare(ref, opts); err != nil {
		return nil, k.err("open", err)
	}
	if err := k.probe(); err != nil {
		return nil, err
	}
	k.ready = true
	return k, nil
}

func (k *Key) prepare(ref string, opts Options) error {
	if strings.HasPrefix(ref, HandlePrefix) {
		h, err := ParseHandle(ref)
		if err != nil {
			return err
		}
		k.handle = h
	} else {
		data, err := readFile(ref)
		if err != nil {
			return err
		}
		if k.file, err = ParseKeyFile(data); err != nil {
			return err
		}
	}
	switch {
	case opts.Password != nil:
		k.auth = bytes.Clone(opts.Password)
	case opts.NoPassword, k.file == nil, k.file.EmptyAuth:
		k.auth = nil
	default:
		return ErrPasswordRequired
	}
	if k.file != nil {
		return k.setPublic(k.file.pub)
	}
	return k.withTPM(func(t transport.TPM) error {
		pub, _, err := k.readPublic(t, k.handle)
		if err != nil {
			return err
		}
		return k.setPublic(pub)
	})
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxKeyFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxKeyFile)
	}
	return data, nil
}

// setPublic checks that the key can sign digests and keeps its public key.
func (k *Key) setPublic(p *tpm2.TPMTPublic) error {
	a := p.ObjectAttributes
	if !a.SignEncrypt || a.Restricted {
		return fmt.Errorf("%w: the key is not an unrestricted signing key (create it with the sign attribute and without restricted)", ErrUnsupported)
	}
	pub, err := tpm2.Pub(*p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
	case *ecdsa.PublicKey:
		if n := pub.Curve.Params().Name; n != "P-256" && n != "P-384" && n != "P-521" {
			return fmt.Errorf("%w: curve %s", ErrUnsupported, n)
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnsupported, pub)
	}
	k.pub, k.tpmPub = pub, tpm2.Marshal(p)
	return nil
}

// probe signs a random digest and verifies the signature.
func (k *Key) probe() error {
	var d [32]byte
	for i := range d {
		d[i] = byte(rand.Uint32())
	}
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		return err
	}
	ok := false
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, d[:], sig)
	}
	if !ok {
		return k.err("sign", fmt.Errorf("%w: the TPM's signature does not verify with the key's public key", ErrNotThisTPM))
	}
	return nil
}

// Public returns the key's public key (*rsa.PublicKey or *ecdsa.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.pub }

// String names the key and its TPM; GoString and Format print the same,
// never the password.
func (k *Key) String() string { return "TPM key " + k.name + " on " + k.device }

func (k *Key) GoString() string { return k.String() }

func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// Device is the TPM the key is used on.
func (k *Key) Device() string { return k.device }

// Sign signs digest on the TPM: PKCS#1 v1.5, or PSS when opts is
// *rsa.PSSOptions (salt as long as the hash), for RSA; ASN.1 DER ECDSA
// for ECC. rand is not used: the TPM makes its own randomness.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	scheme, err := k.scheme(digest, opts)
	if err != nil {
		return nil, k.err("sign", err)
	}
	k.mu.Lock()
	refused := k.refused
	k.mu.Unlock()
	if refused != nil {
		return nil, refused
	}
	var sig *tpm2.TPMTSignature
	giveUp := time.Now().Add(busyFor)
	for attempt := 1; ; attempt++ {
		err = k.withTPM(func(t transport.TPM) error {
			sig, err = k.signOnce(t, scheme, digest)
			return err
		})
		if err == nil || !errors.Is(err, errBusy) || time.Now().After(giveUp) {
			break
		}
		// Another process holds the TPM or its object slots: wait a
		// little, with jitter, as the TPM asks.
		time.Sleep(time.Duration(rand.Int64N(int64(busyDelay) << min(attempt, 4))))
	}
	if err != nil {
		e := k.err("sign", err)
		// A refused password is never sent again: each try counts toward
		// the TPM's lockout. A lockout itself is not remembered: the TPM
		// checks no password while locked, and signing works again once
		// its recovery time has passed.
		if errors.Is(err, ErrWrongPassword) {
			k.mu.Lock()
			k.refused = e
			k.mu.Unlock()
		}
		return nil, e
	}
	return encodeSignature(sig)
}

const (
	// busyFor bounds how long a signature waits for a busy TPM: other
	// processes hold its object slots for a few milliseconds each, but a
	// loaded machine stretches that.
	busyFor   = 10 * time.Second
	busyDelay = 20 * time.Millisecond
)

// errBusy marks a TPM that asked to be tried again (or a device another
// process holds open); after busyFor it counts as unreachable.
var errBusy = fmt.Errorf("%w: the TPM is busy", ErrUnreachable)

func (k *Key) err(op string, err error) error {
	if k.ready && errors.Is(err, ErrNoDevice) {
		// The TPM was there when the key was opened: it went away.
		err = fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return &Error{Key: k.name, Device: k.device, Op: op, Err: err, hint: hintFor(err)}
}

func (k *Key) scheme(digest []byte, opts crypto.SignerOpts) (tpm2.TPMTSigScheme, error) {
	var hash tpm2.TPMIAlgHash
	switch opts.HashFunc() {
	case crypto.SHA256:
		hash = tpm2.TPMAlgSHA256
	case crypto.SHA384:
		hash = tpm2.TPMAlgSHA384
	case crypto.SHA512:
		hash = tpm2.TPMAlgSHA512
	default:
		return tpm2.TPMTSigScheme{}, fmt.Errorf("%w: hash %v (SHA-256, SHA-384 or SHA-512 only)", ErrUnsupported, opts.HashFunc())
	}
	if len(digest) != opts.HashFunc().Size() {
		return tpm2.TPMTSigScheme{}, fmt.Errorf("the digest is %d bytes, not %d", len(digest), opts.HashFunc().Size())
	}
	details := &tpm2.TPMSSchemeHash{HashAlg: hash}
	switch k.pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != opts.HashFunc().Size() {
				return tpm2.TPMTSigScheme{}, fmt.Errorf("%w: a PSS salt of %d bytes (the TPM's is as long as the hash)", ErrUnsupported, pss.SaltLength)
			}
			return tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgRSAPSS, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgRSAPSS, details)}, nil
		}
		return tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgRSASSA, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgRSASSA, details)}, nil
	default:
		return tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, details)}, nil
	}
}

func encodeSignature(sig *tpm2.TPMTSignature) ([]byte, error) {
	switch sig.SigAlg {
	case tpm2.TPMAlgRSASSA:
		s, err := sig.Signature.RSASSA()
		if err != nil {
			return nil, err
		}
		return s.Sig.Buffer, nil
	case tpm2.TPMAlgRSAPSS:
		s, err := sig.Signature.RSAPSS()
		if err != nil {
			return nil, err
		}
		return s.Sig.Buffer, nil
	case tpm2.TPMAlgECDSA:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return nil, err
		}
		return asn1.Marshal(struct{ R, S *big.Int }{
			new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)})
	}
	return nil, fmt.Errorf("the TPM answered with a signature of algorithm %v", sig.SigAlg)
}

// withTPM opens the TPM, runs f and closes the TPM.
func (k *Key) withTPM(f func(transport.TPM) error) error {
	// One use of a TPM at a time in this process: a TPM without a
	// resource manager (a socket, /dev/tpm0) has a few object slots for
	// everyone, and signers that each hold a parent while they wait for a
	// slot for their key would keep each other out.
	mu := deviceLock(k.device)
	mu.Lock()
	defer mu.Unlock()
	t, err := openTPM(k.device)
	if err != nil {
		return err
	}
	defer t.Close()
	return classify(f(t))
}

// deviceLocks holds one mutex per TPM device path.
var deviceLocks sync.Map

func deviceLock(path string) *sync.Mutex {
	mu, _ := deviceLocks.LoadOrStore(path, new(sync.Mutex))
	return mu.(*sync.Mutex)
}

func openTPM(path string) (transport.TPMCloser, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDevice, err)
	}
	switch {
	case fi.Mode()&os.ModeSocket != 0:
		return linuxudstpm.Open(path)
	case fi.Mode()&os.ModeCharDevice != 0:
		t, err := linuxtpm.Open(path)
		if errors.Is(err, syscall.EBUSY) {
			return nil, fmt.Errorf("%w: %w", errBusy, err) // /dev/tpm0 has one user at a time
		}
		if err != nil && !errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return t, err
	}
	return nil, fmt.Errorf("%w: %s is neither a character device nor a socket", ErrNoDevice, path)
}

// classify gives a TPM's answer or a transport failure its cause.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNoDevice) || errors.Is(err, ErrNoKey) ||
		errors.Is(err, ErrNotThisTPM) || errors.Is(err, ErrUnsupported) {
		return err
	}
	var rc tpm2.TPMRC
	if !errors.As(err, &rc) {
		var fmt1 tpm2.TPMFmt1Error
		if !errors.As(err, &fmt1) {
			if errors.Is(err, os.ErrPermission) {
				return err
			}
			if errors.Is(err, syscall.EAGAIN) {
				// A software TPM's socket with a full backlog.
				return fmt.Errorf("%w: %w", errBusy, err)
			}
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
	}
	switch {
	case errors.Is(err, tpm2.TPMRCBadAuth), errors.Is(err, tpm2.TPMRCAuthFail):
		return fmt.Errorf("%w (%w)", ErrWrongPassword, err)
	case errors.Is(err, tpm2.TPMRCLockout):
		return fmt.Errorf("%w (%w)", ErrLockout, err)
	case errors.Is(err, tpm2.TPMRCRetry), errors.Is(err, tpm2.TPMRCYielded), errors.Is(err, tpm2.TPMRCTesting),
		errors.Is(err, tpm2.TPMRCObjectMemory), errors.Is(err, tpm2.TPMRCSessionMemory), errors.Is(err, tpm2.TPMRCMemory),
		errors.Is(err, tpm2.TPMRCObjectHandles), errors.Is(err, tpm2.TPMRCSessionHandles), errors.Is(err, tpm2.TPMRCContextGap):
		return fmt.Errorf("%w (%w)", errBusy, err)
	case errors.Is(err, tpm2.TPMRCInitialize), errors.Is(err, tpm2.TPMRCFailure):
		return fmt.Errorf("%w: the TPM is not started (%w)", ErrUnreachable, err)
	case errors.Is(err, tpm2.TPMRCScheme):
		return fmt.Errorf("%w: the key's own scheme forbids this signature (%w)", ErrUnsupported, err)
	}
	return err
}

func (k *Key) readPublic(t transport.TPM, h tpm2.TPMHandle) (*tpm2.TPMTPublic, tpm2.TPM2BName, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) || errors.Is(err, tpm2.TPMRCReferenceH0) || errors.Is(err, tpm2.TPMRCValue) {
			return nil, tpm2.TPM2BName{}, fmt.Errorf("%w 0x%08x (%w)", ErrNoKey, uint32(h), err)
		}
		return nil, tpm2.TPM2BName{}, err
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, tpm2.TPM2BName{}, fmt.Errorf("the TPM's answer: %w", err)
	}
	return pub, rsp.Name, nil
}

// flush unloads h. A flush that fails leaves the object in the TPM, and
// without a resource manager (swtpm's socket, /dev/tpm0) nobody else
// unloads it: a few such objects fill the TPM's slots for every process
// for good. So a flush the TPM or its socket refused for being busy (a
// socket's full backlog refuses the connection at once) is tried again,
// for up to busyFor; a TPM that cannot be reached at all has restarted
// or gone, and its objects with it.
func flush(t transport.TPM, h tpm2.TPMHandle) {
	giveUp := time.Now().Add(busyFor)
	for attempt := 1; ; attempt++ {
		_, err := tpm2.FlushContext{FlushHandle: h}.Execute(t)
		if err == nil || !errors.Is(classify(err), errBusy) || time.Now().After(giveUp) {
			return
		}
		time.Sleep(time.Duration(rand.Int64N(int64(busyDelay) << min(attempt, 4))))
	}
}

// signOnce loads the key (a key file) or checks that the handle still
// holds it, signs, and flushes what it loaded.
func (k *Key) signOnce(t transport.TPM, scheme tpm2.TPMTSigScheme, digest []byte) (*tpm2.TPMTSignature, error) {
	var key tpm2.AuthHandle
	if k.file == nil {
		pub, name, err := k.readPublic(t, k.handle)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(tpm2.Marshal(pub), k.tpmPub) {
			return nil, fmt.Errorf("%w: the handle holds another key than when it was opened", ErrNotThisTPM)
		}
		key = tpm2.AuthHandle{Handle: k.handle, Name: name}
	} else {
		h, name, err := k.load(t)
		if err != nil {
			return nil, err
		}
		defer flush(t, h)
		key = tpm2.AuthHandle{Handle: h, Name: name}
	}
	key.Auth = tpm2.PasswordAuth(k.auth)
	rsp, err := tpm2.Sign{
		KeyHandle:  key,
		Digest:     tpm2.TPM2BDigest{Buffer: digest},
		InScheme:   scheme,
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(t)
	if err != nil {
		return nil, err
	}
	return &rsp.Signature, nil
}

// load loads the key file's key under its parent: a persistent key, or a
// storage key made from the standard template under the hierarchy.
func (k *Key) load(t transport.TPM) (tpm2.TPMHandle, tpm2.TPM2BName, error) {
	parent := tpm2.AuthHandle{Handle: k.file.Parent, Auth: tpm2.PasswordAuth(nil)}
	if persistent(k.file.Parent) {
		_, name, err := k.readPublic(t, k.file.Parent)
		if err != nil {
			return 0, tpm2.TPM2BName{}, fmt.Errorf("the parent: %w", err)
		}
		parent.Name = name
	} else {
		tmpl := eccStorageTemplate()
		if k.file.RSAParent {
			tmpl = rsaStorageTemplate()
		}
		rsp, err := tpm2.CreatePrimary{PrimaryHandle: parent, InPublic: tpm2.New2B(tmpl)}.Execute(t)
		if err != nil {
			if c := classify(err); errors.Is(c, ErrWrongPassword) {
				return 0, tpm2.TPM2BName{}, fmt.Errorf("the hierarchy 0x%08x has a password, which is not supported: %w", uint32(k.file.Parent), err)
			}
			return 0, tpm2.TPM2BName{}, fmt.Errorf("make the parent: %w", err)
		}
		defer flush(t, rsp.ObjectHandle)
		parent.Handle, parent.Name = rsp.ObjectHandle, rsp.Name
	}
	rsp, err := tpm2.Load{ParentHandle: parent, InPrivate: k.file.private, InPublic: k.file.public}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCIntegrity) || errors.Is(err, tpm2.TPMRCSize) || errors.Is(err, tpm2.TPMRCValue) {
			return 0, tpm2.TPM2BName{}, fmt.Errorf("%w (%w)", ErrNotThisTPM, err)
		}
		return 0, tpm2.TPM2BName{}, err
	}
	return rsp.ObjectHandle, rsp.Name, nil
}
