package pkcs11key

import (
	"errors"
	"fmt"
	"strings"
)

// Causes that callers may test with errors.Is.
var (
	ErrNoModule    = errors.New("the PKCS#11 module cannot be loaded")
	ErrNoToken     = errors.New("no token matches the URI")
	ErrNoObject    = errors.New("no object matches the URI")
	ErrAmbiguous   = errors.New("more than one object matches the URI")
	ErrPINRequired = errors.New("the token needs a PIN and none was given")
	ErrWrongPIN    = errors.New("the token refused the PIN")
	ErrPINLocked   = errors.New("the token's PIN is locked")
	ErrPINFinalTry = errors.New("the token's PIN has one try left: it is not sent")
	ErrContextPIN  = errors.New("the key asks for the PIN again before each signature")
	ErrUnsupported = errors.New("unsupported PKCS#11 key")
	ErrMismatch    = errors.New("the key does not match the certificate")
	ErrTokenGone   = errors.New("the token cannot be reached")
)

// Error is a failure to find or use a PKCS#11 object. Its message names
// the URI (redacted: without its query or any pin attribute), the module
// and the candidates of an ambiguous URI, never the PIN.
type Error struct {
	URI        string // as given; Error prints it redacted
	Module     string // the module's path
	Op         string // what failed, e.g. "sign"
	Err        error
	Candidates []string // for ErrAmbiguous: one line per matching object
	// PINSource, set by the caller, says where the PIN comes from, for
	// the hint of a PIN error.
	PINSource string
	// ModuleFlag, set by the caller, says how to name the module, for
	// the hint of ErrNoModule.
	ModuleFlag string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("PKCS#11 %s (module %s): %s: %v", Redact(e.URI), e.Module, e.Op, e.Err)
	if len(e.Candidates) > 0 {
		msg += ":\n  " + strings.Join(e.Candidates, "\n  ")
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Unavailable reports a token that went away or failed after it was
// opened, or that no token the URI could name is present (one not yet
// plugged in): trying again later may succeed. Tokens present without
// the object are a configuration error.
func (e *Error) Unavailable() bool {
	return errors.Is(e.Err, ErrTokenGone) || errors.Is(e.Err, ErrNoToken)
}

// Config reports a problem that trying again unchanged does not solve.
func (e *Error) Config() bool { return !e.Unavailable() }

// Hint says how to fix the problem, or "".
func (e *Error) Hint() string {
	switch {
	case errors.Is(e.Err, ErrNoModule):
		with := ""
		if e.ModuleFlag != "" {
			with = " with " + e.ModuleFlag
		}
		return "name the token's PKCS#11 module (a .so file)" + with + ", e.g. /usr/lib/softhsm/libsofthsm2.so or opensc-pkcs11.so"
	case errors.Is(e.Err, ErrNoToken), errors.Is(e.Err, ErrNoObject):
		return "list the tokens and objects the module sees with 'rolesenv pkcs11-list'"
	case errors.Is(e.Err, ErrAmbiguous):
		return "add the object's label (object=), id (id=) or the token's serial (serial=) to the URI"
	case errors.Is(e.Err, ErrPINRequired) && e.PINSource != "":
		return "give the token's user PIN in " + e.PINSource
	case errors.Is(e.Err, ErrWrongPIN):
		from := ""
		if e.PINSource != "" {
			from = " (from " + e.PINSource + ")"
		}
		return "check the PIN" + from + "; the token counts failures and locks the PIN after too many"
	case errors.Is(e.Err, ErrPINFinalTry):
		return "check the PIN with the token's own tool (e.g. pkcs11-tool --login --test); a right PIN resets the count"
	case errors.Is(e.Err, ErrPINLocked):
		return "unblock the PIN with the token's security officer PIN or PUK (e.g. pkcs11-tool --unlock-pin, yubico-piv-tool -a unblock-pin)"
	case errors.Is(e.Err, ErrMismatch):
		return "the certificate and the key are not a pair: compare their ids with 'rolesenv pkcs11-list'"
	}
	return ""
}

// rv is a PKCS#11 return value (CK_RV).
type rv uint

func (r rv) Error() string {
	if n, ok := rvNames[r]; ok {
		return n
	}
	return fmt.Sprintf("CKR 0x%08X", uint(r))
}

var rvNames = map[rv]string{
	ckrGeneralError: "CKR_GENERAL_ERROR", ckrFunctionFailed: "CKR_FUNCTION_FAILED", ckrArgumentsBad: "CKR_ARGUMENTS_BAD",
	ckrDeviceError: "CKR_DEVICE_ERROR", ckrDeviceMemory: "CKR_DEVICE_MEMORY", ckrDeviceRemoved: "CKR_DEVICE_REMOVED",
	ckrKeyHandleInvalid: "CKR_KEY_HANDLE_INVALID", ckrMechanismInvalid: "CKR_MECHANISM_INVALID",
	ckrObjectHandleInvalid: "CKR_OBJECT_HANDLE_INVALID", ckrPINIncorrect: "CKR_PIN_INCORRECT", ckrPINLocked: "CKR_PIN_LOCKED",
	ckrSessionClosed: "CKR_SESSION_CLOSED", ckrSessionHandleInvalid: "CKR_SESSION_HANDLE_INVALID",
	ckrTokenNotPresent: "CKR_TOKEN_NOT_PRESENT", ckrUserNotLoggedIn: "CKR_USER_NOT_LOGGED_IN",
	ckrKeyFunctionNotPermitted: "CKR_KEY_FUNCTION_NOT_PERMITTED", ckrSlotIDInvalid: "CKR_SLOT_ID_INVALID",
	ckrCryptokiNotInitialized: "CKR_CRYPTOKI_NOT_INITIALIZED", ckrPINExpired: "CKR_PIN_EXPIRED",
	ckrUserPINNotInitialized: "CKR_USER_PIN_NOT_INITIALIZED", ckrOperationActive: "CKR_OPERATION_ACTIVE", ckrFunctionNotSupported: "CKR_FUNCTION_NOT_SUPPORTED",
}

// classify gives a module's return value its cause.
func classify(err error) error {
	var r rv
	if !errors.As(err, &r) {
		return err
	}
	switch r {
	case ckrPINIncorrect:
		return fmt.Errorf("%w (%w)", ErrWrongPIN, r)
	case ckrPINLocked:
		return fmt.Errorf("%w (%w)", ErrPINLocked, r)
	case ckrUserPINNotInitialized, ckrPINExpired:
		return fmt.Errorf("%w: its PIN must be set first (%w)", ErrWrongPIN, r)
	case ckrMechanismInvalid, ckrKeyFunctionNotPermitted:
		return fmt.Errorf("%w: the token will not sign with this key this way (%w)", ErrUnsupported, r)
	}
	if lost(r) {
		return fmt.Errorf("%w (%w)", ErrTokenGone, r)
	}
	return err
}

// lost reports the return values after which the session (or the token)
// must be opened again.
func lost(r rv) bool {
	switch r {
	case ckrDeviceError, ckrDeviceMemory, ckrDeviceRemoved, ckrSessionClosed, ckrSessionHandleInvalid,
		ckrTokenNotPresent, ckrObjectHandleInvalid, ckrKeyHandleInvalid, ckrUserNotLoggedIn,
		ckrSlotIDInvalid, ckrCryptokiNotInitialized, ckrGeneralError, ckrOperationActive:
		return true
	}
	return false
}
