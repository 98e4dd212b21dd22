package signer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Causes that callers may test with errors.Is. Every error of this package
// that has one of these causes wraps it.
var (
	ErrNotFound           = errors.New("file does not exist")
	ErrPermission         = errors.New("permission denied")
	ErrMalformed          = errors.New("malformed")
	ErrPassphraseRequired = errors.New("the key is encrypted and no passphrase was given")
	ErrWrongPassphrase    = errors.New("wrong passphrase")
	ErrUnsupportedKey     = errors.New("unsupported key")
	ErrKeyMismatch        = errors.New("the private key does not match the certificate")
	ErrExpired            = errors.New("certificate has expired")
	ErrNotYetValid        = errors.New("certificate is not valid yet")
	ErrCannotSign         = errors.New("certificate may not be used for signing")
)

// FileError is a problem with a certificate, key or bundle file: it cannot
// be read or parsed, it holds an unsupported key, or it fails a local check.
// Its message names the file and the cause in one line, never the content.
type FileError struct {
	Path string // the file as the caller named it
	What string // "certificate", "private key", "intermediates"
	Err  error
	hint string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.What, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Config reports a local configuration problem: trying again unchanged
// fails again.
func (e *FileError) Config() bool { return true }

// Hint says how to fix the problem, or "".
func (e *FileError) Hint() string { return e.hint }

// ConfigError is a problem with the settings themselves: an ARN, a
// region, a duration, an endpoint.
type ConfigError struct {
	Field string // the setting, e.g. "trust anchor ARN"
	Msg   string
	hint  string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

// Config reports a local configuration problem: trying again unchanged
// fails again.
func (e *ConfigError) Config() bool { return true }

// Hint says how to fix the problem, or "".
func (e *ConfigError) Hint() string { return e.hint }

// APIError is an error answer from CreateSession, after any retries.
type APIError struct {
	StatusCode int
	Code       string // the service's error type, e.g. "AccessDeniedException"
	Message    string // the service's message, on one line
	RequestID  string
	Attempts   int
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("CreateSession failed")
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	b.WriteString(": ")
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (HTTP %d", e.StatusCode)
		if e.RequestID != "" {
			fmt.Fprintf(&b, ", request id %s", e.RequestID)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Throttled reports a throttling answer.
func (e *APIError) Throttled() bool {
	switch e.Code {
	case "ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded":
		return true
	}
	return e.StatusCode == 429
}

// Unavailable reports a server-side failure or throttling that outlasted
// the retries: trying again later may succeed.
func (e *APIError) Unavailable() bool { return e.StatusCode >= 500 || e.Throttled() }

// AccessDenied reports that the service refused the certificate, the role
// or the session.
func (e *APIError) AccessDenied() bool {
	return !e.Unavailable() && (e.StatusCode == 401 || e.StatusCode == 403 || e.Code == "AccessDeniedException")
}

// Config reports an answer that points at the settings: an ARN that names
// nothing, a duration out of bounds.
func (e *APIError) Config() bool {
	return !e.Unavailable() && !e.AccessDenied() && e.StatusCode >= 400 && e.StatusCode < 500
}

// Hint says what usually causes this answer.
func (e *APIError) Hint() string {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Throttled():
		return "CreateSession's quota (10 a second by default) is shared by every client in the account and region; " +
			"raise it in Service Quotas, start fewer clients at once, or allow more time"
	case e.Unavailable():
		return "IAM Roles Anywhere is unavailable; try again later"
	case strings.Contains(msg, "untrusted") || strings.Contains(msg, "trust anchor") && strings.Contains(msg, "certificate") ||
		strings.Contains(msg, "chain"):
		return "check that the trust anchor's CA issued this certificate, and that the intermediates bundle holds every CA between them"
	case strings.Contains(msg, "date") || strings.Contains(msg, "expired") && strings.Contains(msg, "signature") ||
		strings.Contains(msg, "clock"):
		return "check the system clock: requests are valid for 5 minutes around their date"
	case strings.Contains(msg, "signature"):
		return "the service could not verify the request signature; check that the key belongs to the certificate"
	case e.AccessDenied():
		return "check the role's trust policy: it must allow rolesanywhere.amazonaws.com to sts:AssumeRole, " +
			"sts:TagSession and sts:SetSourceIdentity, and its conditions must match the certificate"
	case e.Code == "ResourceNotFoundException":
		return "check the trust anchor, profile and role ARNs, that they are enabled, and the region"
	case strings.Contains(msg, "duration"):
		return fmt.Sprintf("the session duration must be between %d seconds and the profile's maximum", MinDuration/time.Second)
	case e.Code == "ValidationException":
		return "check the ARNs, the session duration and the role session name"
	}
	return ""
}

// NetworkError is a failure to get any answer from the service (DNS, TCP,
// TLS, timeouts), after retries.
type NetworkError struct {
	Endpoint string
	Attempts int
	Err      error
}

func (e *NetworkError) Error() string {
	s := "CreateSession failed"
	if e.Attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	return s + ": " + oneLine(e.Err.Error())
}

func (e *NetworkError) Unwrap() error { return e.Err }

// Unavailable reports that the service could not be reached.
func (e *NetworkError) Unavailable() bool { return true }

// Hint names the settings that decide where requests go.
func (e *NetworkError) Hint() string {
	return "check the network path to " + e.Endpoint + " (proxy settings HTTPS_PROXY and NO_PROXY, AWS_CA_BUNDLE)"
}

// SignError is a failure of the private key to sign a request, after
// retries: a key in hardware (a TPM, a token) that cannot be reached, is
// busy, or refuses. Nothing was sent to the service. The key's own error
// is wrapped, with its class and hint.
type SignError struct {
	Attempts int
	Err      error
}

func (e *SignError) Error() string {
	s := "the private key failed to sign CreateSession"
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	return s + ": " + oneLine(e.Err.Error())
}

func (e *SignError) Unwrap() error { return e.Err }

// Unavailable reports a failure that trying again later may cure: any
// whose cause does not say it is a configuration problem (a wrong
// password, a key that is gone).
func (e *SignError) Unavailable() bool { return !configCause(e.Err) }

// configCause reports whether an error in err's chain says it is a
// configuration problem.
func configCause(err error) bool {
	var c interface{ Config() bool }
	return errors.As(err, &c) && c.Config()
}

// contextError is CreateSession given up for its caller's context. A
// deadline that passed before the service answered means that it could
// not be reached in time, as a network failure does (Unavailable);
// a cancellation is the caller's own doing and is not classified. last is
// the failure of an earlier call, if there was one: after throttling, say,
// the deadline is not the news, the throttling is.
func contextError(err, last error) error {
	err = fmt.Errorf("CreateSession: %w", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return &deadlineError{err: err, last: last}
	}
	return err
}

type deadlineError struct {
	err  error // the context's, wrapped
	last error // the last failed call's, or nil
}

func (e *deadlineError) Error() string {
	if e.last != nil {
		return e.last.Error() + "; the deadline passed while trying again"
	}
	return e.err.Error() + " (no answer before the deadline)"
}

func (e *deadlineError) Unwrap() []error {
	if e.last != nil {
		return []error{e.err, e.last}
	}
	return []error{e.err}
}

// Unavailable reports that the service did not answer in time.
func (e *deadlineError) Unavailable() bool { return true }

// oneLine keeps messages that come from elsewhere on one line and short.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 400
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
