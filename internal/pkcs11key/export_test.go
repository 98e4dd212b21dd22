package pkcs11key

// LockAfter makes C_Login answer CKR_PIN_INCORRECT n times, then
// CKR_PIN_LOCKED, as a token with n tries left does; it returns how many
// logins were tried and a function that restores the module's answers.
func LockAfter(n int) (tries func() int, restore func()) {
	count := 0
	loginFault = func(uint) (rv, bool) {
		count++
		if count <= n {
			return ckrPINIncorrect, true
		}
		return ckrPINLocked, true
	}
	return func() int { return count }, func() { loginFault = nil }
}

// CountLogins counts the C_Login calls (the module answers them); it
// returns the count and a function that stops counting.
func CountLogins() (count func() int, restore func()) {
	n := 0
	loginFault = func(uint) (rv, bool) {
		n++
		return 0, false
	}
	return func() int { return n }, func() { loginFault = nil }
}

// Restart finalises and initialises k's module again, as after a token
// failure.
func Restart(k *Key) { k.m.restart() }

// CountSessions counts the sessions opened; it returns the count and a
// function that stops counting.
func CountSessions() (count func() int, restore func()) {
	n := 0
	sessionOpened = func() { n++ }
	return func() int { return n }, func() { sessionOpened = nil }
}

// FailContextLoginOnce makes the next context-specific login fail with
// CKR_FUNCTION_FAILED, which says nothing of the session or the PIN.
func FailContextLoginOnce() (restore func()) {
	done := false
	loginFault = func(user uint) (rv, bool) {
		if user == ckuContextSpecific && !done {
			done = true
			return ckrFunctionFailed, true
		}
		return 0, false
	}
	return func() { loginFault = nil }
}

// FinalTry makes every token report CKF_USER_PIN_FINAL_TRY.
func FinalTry() (restore func()) {
	tokenFlagsFault = ckfUserPINFinalTry
	return func() { tokenFlagsFault = 0 }
}
