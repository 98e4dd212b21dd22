//go:build linux && !boringcrypto

package sysroots

import (
	"crypto/fips140"
	"runtime"
)

// supported reports whether this package verifies as crypto/x509 would:
// on Linux (not Android, whose directories differ), outside FIPS 140
// mode (where crypto/tls also checks the chain's algorithms). A
// BoringCrypto build, whose crypto/tls can be made to keep FIPS-approved
// chains alone, does not use it at all.
func supported() bool { return runtime.GOOS == "linux" && !fips140.Enabled() }
