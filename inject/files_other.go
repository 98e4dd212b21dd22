//go:build !unix

package inject

// openFlags: no flags elsewhere; the look before the open refuses what
// is not a regular file.
const openFlags = 0
