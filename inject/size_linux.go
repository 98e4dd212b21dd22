package inject

import "golang.org/x/sys/unix"

// systemArgLimits computes exec's limits as Linux does (fs/exec.c): a
// quarter of the stack size limit, at most three quarters of 8 MiB, at
// least 128 KiB; and 32 pages for one string. glibc's sysconf(_SC_ARG_MAX)
// derives its answer from the same stack limit.
func systemArgLimits() argLimits {
	const (
		minArgMax = 128 << 10
		maxArgMax = (8 << 20) / 4 * 3
	)
	total := maxArgMax
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_STACK, &rl) == nil && rl.Cur != unix.RLIM_INFINITY && rl.Cur/4 < uint64(total) {
		total = int(rl.Cur / 4)
	}
	return argLimits{total: max(total, minArgMax), perString: 32 * unix.Getpagesize()}
}
