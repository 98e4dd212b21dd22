//go:build !linux || boringcrypto

package sysroots

// supported is false: elsewhere crypto/x509 asks the platform's verifier,
// and crypto/tls keeps that.
func supported() bool { return false }
