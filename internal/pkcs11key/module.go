package pkcs11key

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The PKCS#11 constants this package uses (pkcs11t.h). CK_ULONG is a C
// unsigned long: 8 bytes on 64-bit Linux and macOS, Go's uint there.
const (
	ckrOK                         rv = 0x000
	ckrGeneralError               rv = 0x005
	ckrFunctionFailed             rv = 0x006
	ckrArgumentsBad               rv = 0x007
	ckrSlotIDInvalid              rv = 0x003
	ckrAttributeSensitive         rv = 0x011
	ckrAttributeTypeInvalid       rv = 0x012
	ckrDeviceError                rv = 0x030
	ckrDeviceMemory               rv = 0x031
	ckrDeviceRemoved              rv = 0x032
	ckrFunctionNotSupported       rv = 0x054
	ckrOperationActive            rv = 0x090
	ckrKeyHandleInvalid           rv = 0x060
	ckrKeyFunctionNotPermitted    rv = 0x068
	ckrMechanismInvalid           rv = 0x070
	ckrObjectHandleInvalid        rv = 0x082
	ckrPINIncorrect               rv = 0x0A0
	ckrPINExpired                 rv = 0x0A3
	ckrPINLocked                  rv = 0x0A4
	ckrSessionClosed              rv = 0x0B0
	ckrSessionHandleInvalid       rv = 0x0B3
	ckrTokenNotPresent            rv = 0x0E0
	ckrUserAlreadyLoggedIn        rv = 0x100
	ckrUserNotLoggedIn            rv = 0x101
	ckrUserPINNotInitialized      rv = 0x102
	ckrBufferTooSmall             rv = 0x150
	ckrCryptokiNotInitialized     rv = 0x190
	ckrCryptokiAlreadyInitialized rv = 0x191

	ckfOSLockingOK        = 0x2
	ckfRWSession          = 0x2
	ckfSerialSession      = 0x4
	ckfLoginRequired      = 0x4
	ckfProtectedAuthPath  = 0x100
	ckfTokenInitialized   = 0x400
	ckfUserPINFinalTry    = 0x20000
	ckfUserPINLocked      = 0x40000
	ckuUser               = 1
	ckuContextSpecific    = 2
	unavailableInfo       = ^uint(0)
	ckaClass              = 0x000
	ckaLabel              = 0x003
	ckaValue              = 0x011
	ckaKeyType            = 0x100
	ckaID                 = 0x102
	ckaModulus            = 0x120
	ckaPublicExponent     = 0x122
	ckaECParams           = 0x180
	ckaECPoint            = 0x181
	ckaAlwaysAuthenticate = 0x202
	ckoCertificate        = 1
	ckoPublicKey          = 2
	ckoPrivateKey         = 3
	ckkRSA                = 0
	ckkEC                 = 3
	ckmRSAPKCS            = 0x001
	ckmRSAPKCSPSS         = 0x00D
	ckmECDSA              = 0x1041
	ckmSHA256             = 0x250
	ckmSHA384             = 0x260
	ckmSHA512             = 0x270
	ckgMGF1SHA256         = 0x2
	ckgMGF1SHA384         = 0x3
	ckgMGF1SHA512         = 0x4
)

// Indexes in CK_FUNCTION_LIST, after its CK_VERSION (padded to 8 bytes).
const (
	fnInitialize        = 0
	fnFinalize          = 1
	fnGetInfo           = 2
	fnGetSlotList       = 4
	fnGetSlotInfo       = 5
	fnGetTokenInfo      = 6
	fnOpenSession       = 12
	fnCloseSession      = 13
	fnLogin             = 18
	fnGetAttributeValue = 24
	fnFindObjectsInit   = 26
	fnFindObjects       = 27
	fnFindObjectsFinal  = 28
	fnSignInit          = 42
	fnSign              = 43
	fnCount             = 68 // the functions of PKCS#11 2.40
)

// attribute is a CK_ATTRIBUTE; mechanism a CK_MECHANISM. Go lays both out
// as C does on 64-bit Unix (three 8-byte words, no packing). Their
// pointers point to Go heap memory, which does not move, and the values
// stay referenced until the call returns.
type attribute struct {
	typ uint
	val unsafe.Pointer
	len uint
}

type mechanism struct {
	mech  uint
	param unsafe.Pointer
	len   uint
}

// module is a loaded and initialised PKCS#11 module, shared by every
// user in the process and finalised when the last one releases it.
type module struct {
	path  string
	fl    unsafe.Pointer // CK_FUNCTION_LIST
	refs  int
	owned bool // this package initialised it, so finalises it
	// gen counts restarts: a session or object handle from an earlier
	// generation is stale, and may name another user's session now
	// (modules reuse handle numbers).
	gen atomic.Uint64
	// racy: SoftHSM, whose file-backed tokens read as absent or blank
	// for a moment while another process writes them.
	racy bool
	// use is held for reading by every call, and for writing while the
	// module is finalised and initialised again: no call is in flight
	// then.
	use sync.RWMutex
}

var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: map[string]*module{}}

// dlopened keeps the handle of every module loaded: a module is never
// unloaded (libraries with threads of their own do not survive it).
var dlopened = map[string]uintptr{}

// loadModule loads path (once per process) and initialises it with
// CKF_OS_LOCKING_OK (once per set of users).
func loadModule(path string) (*module, error) {
	if unsafe.Sizeof(uint(0)) != 8 {
		// The structures here are laid out for an 8-byte CK_ULONG.
		return nil, fmt.Errorf("%w: PKCS#11 is supported on 64-bit Unix only", ErrNoModule)
	}
	modules.Lock()
	defer modules.Unlock()
	m := modules.m[path]
	if m == nil {
		h, ok := dlopened[path]
		if !ok {
			var err error
			if h, err = purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNoModule, err)
			}
			dlopened[path] = h
		}
		getList, err := purego.Dlsym(h, "C_GetFunctionList")
		if err != nil {
			return nil, fmt.Errorf("%w: no C_GetFunctionList: it is not a PKCS#11 module", ErrNoModule)
		}
		m = &module{path: path}
		if r, _, _ := purego.SyscallN(getList, uintptr(unsafe.Pointer(&m.fl))); rv(r) != ckrOK || m.fl == nil {
			return nil, fmt.Errorf("%w: C_GetFunctionList: %v", ErrNoModule, rv(r))
		}
		if major := *(*byte)(m.fl); major < 2 {
			return nil, fmt.Errorf("%w: PKCS#11 version %d", ErrNoModule, major)
		}
	}
	if m.refs == 0 {
		args := &[6]uintptr{4: ckfOSLockingOK} // CK_C_INITIALIZE_ARGS: no mutex functions, OS locking
		switch r := m.call(fnInitialize, uintptr(unsafe.Pointer(args))); r {
		case ckrOK:
			m.owned = true
		case ckrCryptokiAlreadyInitialized:
			m.owned = false // another part of the process did it
		default:
			return nil, fmt.Errorf("%w: C_Initialize: %v", ErrNoModule, r)
		}
		if li, err := m.info(); err == nil {
			m.racy = strings.HasPrefix(li.manufacturer, "SoftHSM")
		}
		modules.m[path] = m
	}
	m.refs++
	return m, nil
}

// release ends one use of m; the last one finalises the module, so that a
// later use starts afresh (a module reads its configuration then).
func (m *module) release() {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs == 0 {
		if m.owned {
			m.use.Lock()
			m.rawCall(fnFinalize, 0)
			m.use.Unlock()
		}
		delete(modules.m, m.path)
	}
}

// restart finalises and initialises the module again, if this package
// initialised it; every session in the process ends (a Key opens its own
// again at its next signature).
func (m *module) restart() {
	modules.Lock()
	defer modules.Unlock()
	if !m.owned {
		return
	}
	m.use.Lock()
	defer m.use.Unlock()
	m.rawCall(fnFinalize, 0)
	m.gen.Add(1)
	args := &[6]uintptr{4: ckfOSLockingOK}
	m.rawCall(fnInitialize, uintptr(unsafe.Pointer(args)))
}

// call calls the module's function number i. Pointers converted to
// uintptr in its arguments are moved to the heap and kept alive until it
// returns, as for purego.SyscallN.
//
//go:uintptrescapes
func (m *module) call(i int, args ...uintptr) rv {
	m.use.RLock()
	defer m.use.RUnlock()
	return m.rawCall(i, args...)
}

// rawCall is call without the lock.
//
//go:uintptrescapes
func (m *module) rawCall(i int, args ...uintptr) rv {
	fn := *(*uintptr)(unsafe.Add(m.fl, 8+8*i))
	if fn == 0 {
		return ckrFunctionNotSupported
	}
	r, _, _ := purego.SyscallN(fn, args...)
	return rv(r)
}

func ok(r rv) error {
	if r == ckrOK {
		return nil
	}
	return r
}

// heapBytes returns n zero bytes on the heap (a length known only at run
// time keeps the compiler from placing them on the stack, which moves).
//
//go:noinline
func heapBytes(n int) []byte { return make([]byte, max(n, 1)) }

// padded is a fixed-size CK_UTF8CHAR field: blank-padded, not terminated.
func padded(b []byte) string { return string(bytes.TrimRight(b, " \x00")) }

type libInfo struct{ manufacturer, description, version string }

func (m *module) info() (libInfo, error) {
	b := heapBytes(128) // CK_INFO is 88 bytes
	if err := ok(m.call(fnGetInfo, uintptr(unsafe.Pointer(&b[0])))); err != nil {
		return libInfo{}, err
	}
	return libInfo{padded(b[2:34]), padded(b[48:80]), fmt.Sprintf("%d.%d", b[80], b[81])}, nil
}

// slots lists the slots that hold a token.
func (m *module) slots() ([]uint, error) {
	var n uint
	if err := ok(m.call(fnGetSlotList, 1, 0, uintptr(unsafe.Pointer(&n)))); err != nil || n == 0 {
		return nil, err
	}
	ids := make([]uint, n+4) // room for a token plugged in meanwhile
	n = uint(len(ids))
	if err := ok(m.call(fnGetSlotList, 1, uintptr(unsafe.Pointer(&ids[0])), uintptr(unsafe.Pointer(&n)))); err != nil {
		return nil, err
	}
	return ids[:n], nil
}

type slotInfo struct {
	id                        uint
	description, manufacturer string
	label, tokenManufacturer  string
	model, serial             string
	tokenFlags                uint
}

// slotInfo reads a slot's description and its token's.
func (m *module) slotInfo(id uint) (slotInfo, error) {
	s := heapBytes(128) // CK_SLOT_INFO is 104 bytes
	if err := ok(m.call(fnGetSlotInfo, uintptr(id), uintptr(unsafe.Pointer(&s[0])))); err != nil {
		return slotInfo{}, err
	}
	t := heapBytes(256) // CK_TOKEN_INFO is 208 bytes
	if err := ok(m.call(fnGetTokenInfo, uintptr(id), uintptr(unsafe.Pointer(&t[0])))); err != nil {
		return slotInfo{}, err
	}
	return slotInfo{id: id, description: padded(s[:64]), manufacturer: padded(s[64:96]),
		label: padded(t[:32]), tokenManufacturer: padded(t[32:64]), model: padded(t[64:80]),
		serial: padded(t[80:96]), tokenFlags: uint(binary.NativeEndian.Uint64(t[96:104])) | tokenFlagsFault}, nil
}

// tokenFlagsFault, set by tests only, is added to every token's flags:
// SoftHSM never reports a PIN's last try.
var tokenFlagsFault uint

// sessionOpened, set by tests only, is called at each C_OpenSession.
var sessionOpened func()

func (m *module) openSession(slot uint) (uint, error) {
	if sessionOpened != nil {
		sessionOpened()
	}
	var s uint
	err := ok(m.call(fnOpenSession, uintptr(slot), ckfSerialSession, 0, 0, uintptr(unsafe.Pointer(&s))))
	return s, err
}

func (m *module) closeSession(s uint) { m.call(fnCloseSession, uintptr(s)) }

// loginFault, set by tests only, answers C_Login in the module's place
// when it returns true: SoftHSM never locks a PIN.
var loginFault func(user uint) (rv, bool)

func (m *module) login(s uint, user uint, pin []byte) error {
	if loginFault != nil {
		if r, faulty := loginFault(user); faulty {
			return ok(r)
		}
	}
	p := heapBytes(len(pin))
	copy(p, pin)
	defer clear(p)
	r := m.call(fnLogin, uintptr(s), uintptr(user), uintptr(unsafe.Pointer(&p[0])), uintptr(len(pin)))
	if r == ckrUserAlreadyLoggedIn {
		return nil // the login is the application's, shared by its sessions
	}
	return ok(r)
}

// find returns the objects that match every attribute of tmpl.
func (m *module) find(s uint, tmpl map[uint][]byte) ([]uint, error) {
	attrs := make([]attribute, 0, len(tmpl)+1)
	for typ, v := range tmpl {
		b := heapBytes(len(v))
		copy(b, v)
		attrs = append(attrs, attribute{typ: typ, val: unsafe.Pointer(&b[0]), len: uint(len(v))})
	}
	attrs = append(attrs, attribute{}) // &attrs[0] exists with no attribute too
	// The pointer is converted in the call's own arguments, so that the
	// template stays alive and in place until the call returns.
	err := ok(m.call(fnFindObjectsInit, uintptr(s), uintptr(unsafe.Pointer(&attrs[0])), uintptr(len(attrs)-1)))
	runtime.KeepAlive(attrs)
	if err != nil {
		return nil, err
	}
	defer m.call(fnFindObjectsFinal, uintptr(s))
	var found []uint
	batch := make([]uint, 64)
	for len(found) < 10000 {
		var n uint
		if err := ok(m.call(fnFindObjects, uintptr(s), uintptr(unsafe.Pointer(&batch[0])), uintptr(len(batch)), uintptr(unsafe.Pointer(&n)))); err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		found = append(found, batch[:n]...)
	}
	return found, nil
}

// attrs reads attributes of an object; an attribute the object does not
// have, or keeps secret, is nil.
func (m *module) attrs(s, obj uint, types ...uint) ([][]byte, error) {
	a := make([]attribute, len(types))
	for i, t := range types {
		a[i].typ = t
	}
	get := func() error {
		r := m.call(fnGetAttributeValue, uintptr(s), uintptr(obj), uintptr(unsafe.Pointer(&a[0])), uintptr(len(a)))
		if r == ckrAttributeSensitive || r == ckrAttributeTypeInvalid {
			return nil // each attribute says which
		}
		return ok(r)
	}
	if err := get(); err != nil {
		return nil, err
	}
	bufs := make([][]byte, len(a))
	for i := range a {
		if a[i].len != unavailableInfo && a[i].len < 1<<20 {
			bufs[i] = heapBytes(int(a[i].len))
			a[i].val = unsafe.Pointer(&bufs[i][0])
		} else {
			a[i].len = 0
		}
	}
	if err := get(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(a))
	for i := range a {
		if a[i].val != nil && a[i].len != unavailableInfo {
			out[i] = bufs[i][:a[i].len]
		}
	}
	return out, nil
}

// sign signs data with key by mech; login, when not nil, runs between
// C_SignInit and C_Sign (a context-specific login). After any failure
// the caller must close the session: the operation may still be active.
func (m *module) sign(s, key uint, mech *mechanism, data []byte, login func() error) ([]byte, error) {
	if err := ok(m.call(fnSignInit, uintptr(s), uintptr(unsafe.Pointer(mech)), uintptr(key))); err != nil {
		return nil, err
	}
	// A failure from here on leaves the operation active in the
	// session: the caller closes the session, which ends it.
	if login != nil {
		if err := login(); err != nil {
			return nil, err
		}
	}
	in := heapBytes(len(data))
	copy(in, data)
	out := heapBytes(1024) // an RSA-4096 signature is 512 bytes
	n := uint(len(out))
	r := m.call(fnSign, uintptr(s), uintptr(unsafe.Pointer(&in[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&out[0])), uintptr(unsafe.Pointer(&n)))
	if r == ckrBufferTooSmall && n < 1<<16 {
		out = heapBytes(int(n))
		r = m.call(fnSign, uintptr(s), uintptr(unsafe.Pointer(&in[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&out[0])), uintptr(unsafe.Pointer(&n)))
	}
	if err := ok(r); err != nil {
		return nil, err
	}
	return out[:n], nil
}

func ulong(v uint) []byte { return binary.NativeEndian.AppendUint64(nil, uint64(v)) }

func toUlong(b []byte) (uint, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return uint(binary.NativeEndian.Uint64(b)), true
}
