package inject

import "golang.org/x/sys/unix"

// systemArgLimits reads kern.argmax (what sysconf(_SC_ARG_MAX) returns);
// macOS has no per-string limit.
func systemArgLimits() argLimits {
	n, err := unix.SysctlUint32("kern.argmax")
	if err != nil || n == 0 {
		n = 256 << 10
	}
	return argLimits{total: int(n)}
}
