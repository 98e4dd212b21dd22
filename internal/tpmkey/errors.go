package tpmkey

import (
	"errors"
	"fmt"
)

// Causes that callers may test with errors.Is.
var (
	ErrUnsupported      = errors.New("unsupported TPM key")
	ErrPasswordRequired = errors.New("the key needs a password and none was given")
	ErrWrongPassword    = errors.New("the TPM refused the key's password")
	ErrLockout          = errors.New("the TPM is in dictionary-attack lockout")
	ErrNoKey            = errors.New("no key at that handle")
	ErrNotThisTPM       = errors.New("the key does not load under its parent on this TPM")
	ErrNoDevice         = errors.New("no TPM there")
	ErrUnreachable      = errors.New("the TPM cannot be reached")
)

// Error is a failure to open or use a TPM key. Its message names the key
// and the TPM, never the password.
type Error struct {
	Key    string // the key as named: a file or handle:0x81000001
	Device string // the TPM device or socket
	Op     string // what failed, e.g. "sign"
	Err    error
	hint   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("TPM key %s (TPM %s): %s: %v", e.Key, e.Device, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Unavailable reports a TPM that could not be reached, was busy, or is in
// dictionary-attack lockout: trying again later may succeed.
func (e *Error) Unavailable() bool {
	return errors.Is(e.Err, ErrUnreachable) || errors.Is(e.Err, ErrLockout)
}

// Config reports a problem that trying again unchanged does not solve:
// a wrong or missing password, a missing key, a key of another TPM.
func (e *Error) Config() bool { return !e.Unavailable() }

// Hint says how to fix the problem, or "".
func (e *Error) Hint() string { return e.hint }

func hintFor(err error) string {
	switch {
	case errors.Is(err, ErrPasswordRequired):
		return "give the key's password, or say that it has none"
	case errors.Is(err, ErrWrongPassword):
		return "check the key's password; the TPM counts failures and locks out after too many"
	case errors.Is(err, ErrLockout):
		return "wait for the TPM's lockout recovery time, or clear it with tpm2_dictionarylockout --clear-lockout"
	case errors.Is(err, ErrNoKey):
		return "list the persistent handles with tpm2_getcap handles-persistent"
	case errors.Is(err, ErrNotThisTPM):
		return "the key file was made on another TPM, or its parent was replaced"
	case errors.Is(err, ErrNoDevice):
		return "the TPM is /dev/tpmrm0 unless another device or socket is named"
	}
	return ""
}
