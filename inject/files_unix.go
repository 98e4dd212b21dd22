//go:build unix

package inject

import "golang.org/x/sys/unix"

// openFlags open an env file without blocking (a named pipe opens at once,
// and is then refused) and without making a terminal the process's
// controlling terminal.
const openFlags = unix.O_NONBLOCK | unix.O_NOCTTY
