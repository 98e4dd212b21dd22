package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// dropBinaryPages unmaps the pages of rolesenv's own executable that the
// process has mapped so far: in each private, read-only mapping of the
// binary with no anonymous page (code, read-only data), MADV_DONTNEED
// removes the mappings of the pages, which stay in the page cache; the
// next access maps the same page again from it, as a minor fault (or
// reads it back from the file if the kernel reclaimed it meanwhile).
// Writable mappings (data, bss) and mappings written to (relocations)
// are never touched. The mappings are found at the first call and kept:
// the later calls (one after each check) make a system call per mapping
// and allocate nothing. It returns how many mappings it advised.
func dropBinaryPages() (int, error) {
	binary.once.Do(func() { binary.maps, binary.err = binaryMappings() })
	if binary.err != nil {
		return 0, binary.err
	}
	for i, m := range binary.maps {
		if err := madvise(m, unix.MADV_DONTNEED); err != nil {
			return i, fmt.Errorf("drop the binary's pages: madvise: %w", err)
		}
	}
	return len(binary.maps), nil
}

// binary holds the mappings dropBinaryPages advises.
var binary struct {
	once sync.Once
	maps []mapping
	err  error
}

// binaryMappings finds the mappings dropBinaryPages may advise.
func binaryMappings() ([]mapping, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("drop the binary's pages: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("drop the binary's pages: %w", err)
	}
	return readOnlyMappings(smaps, exe), nil
}

// mapping is an address range of /proc/self/maps.
type mapping struct{ start, end uintptr }

func madvise(m mapping, advice int) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, uintptr(advice))
	if errno != 0 {
		return errno
	}
	return nil
}

// readOnlyMappings returns the mappings of path in smaps (the text of
// /proc/self/smaps) that are private, cannot be written and hold no
// anonymous page: pages that only the file backs, so that dropping them
// loses nothing. A read-only mapping with anonymous pages was written
// before it was made read-only (relocations of a dynamically linked
// build, a debugger's breakpoints) and is left alone.
func readOnlyMappings(smaps []byte, path string) []mapping {
	var out []mapping
	var cur *mapping // the last header's mapping, while it qualifies
	for line := range bytes.Lines(smaps) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if m, ok := parseMapsHeader(f, path); ok {
			out = append(out, m)
			cur = &out[len(out)-1]
			continue
		}
		if strings.Contains(f[0], "-") {
			cur = nil // another mapping's header
			continue
		}
		if cur != nil && f[0] == "Anonymous:" && len(f) > 1 && f[1] != "0" {
			out = out[:len(out)-1]
			cur = nil
		}
	}
	return out
}

// parseMapsHeader reads a line such as "00400000-00c5a000 r-xp 00000000
// fd:01 123 /usr/bin/rolesenv", split into fields, and reports whether it
// is a private mapping of path that cannot be written.
func parseMapsHeader(f []string, path string) (mapping, bool) {
	if len(f) < 6 || strings.Join(f[5:], " ") != path {
		return mapping{}, false
	}
	perms := f[1]
	if len(perms) != 4 || perms[1] != '-' || perms[3] != 'p' {
		return mapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return mapping{}, false
	}
	return mapping{uintptr(s), uintptr(e)}, true
}
