package inject

import (
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// SizeError reports an environment that exec would refuse (E2BIG). It
// names the largest variables and their sizes, never their values.
type SizeError struct {
	Total   int       // bytes the strings and pointers need
	Limit   int       // bytes the system allows
	TooLong []VarSize // variables over the per-string limit (Linux: 128 KiB)
	PerVar  int       // the per-string limit; 0 when there is none
	Largest []VarSize // the largest variables, largest first
}

// VarSize is a variable's name and the size of its NAME=value string.
type VarSize struct {
	Name string
	Size int
}

func (e *SizeError) Error() string {
	var b strings.Builder
	if len(e.TooLong) > 0 {
		b.WriteString("the command's environment has variables over the system's limit of ")
		b.WriteString(strconv.Itoa(e.PerVar))
		b.WriteString(" bytes for one variable: ")
		b.WriteString(sizes(e.TooLong))
		return b.String()
	}
	b.WriteString("the command's environment and arguments need ")
	b.WriteString(strconv.Itoa(e.Total))
	b.WriteString(" bytes, over the system's limit of ")
	b.WriteString(strconv.Itoa(e.Limit))
	b.WriteString("; the largest variables: ")
	b.WriteString(sizes(e.Largest))
	return b.String()
}

func sizes(vs []VarSize) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Name + " (" + strconv.Itoa(v.Size) + " bytes)"
	}
	return strings.Join(parts, ", ")
}

// Config reports a configuration error (exit 78): the template makes an
// environment too large to run anything with.
func (e *SizeError) Config() bool { return true }

// argLimits are the exec limits of this system.
type argLimits struct {
	total     int // ARG_MAX: strings and pointers of argv and envp
	perString int // MAX_ARG_STRLEN, including the NUL; 0 when none
}

// CheckSize checks that exec can take argv and env (NAME=value strings):
// their strings, the program path and the pointer arrays must fit the
// system's limit (ARG_MAX as the kernel computes it), and on Linux every
// string must fit in MAX_ARG_STRLEN (32 pages, 128 KiB). Pass argv with
// the program path as argv[0]. Too large is a *SizeError.
func CheckSize(argv, env []string) error {
	return checkSize(argv, env, systemArgLimits())
}

func checkSize(argv, env []string, lim argLimits) error {
	const ptr = int(unsafe.Sizeof(uintptr(0)))
	total := (max(len(argv), 1) + len(env) + 2) * ptr
	if len(argv) > 0 {
		total += len(argv[0]) + 1 // the kernel copies the program path too
	}
	for _, a := range argv {
		total += len(a) + 1
	}
	var vars []VarSize
	var tooLong []VarSize
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		v := VarSize{Name: name, Size: len(kv) + 1}
		total += v.Size
		vars = append(vars, v)
		if lim.perString > 0 && v.Size > lim.perString {
			tooLong = append(tooLong, v)
		}
	}
	if len(tooLong) == 0 && total <= lim.total {
		return nil
	}
	slices.SortStableFunc(vars, func(a, b VarSize) int { return b.Size - a.Size })
	return &SizeError{Total: total, Limit: lim.total, TooLong: tooLong, PerVar: lim.perString, Largest: vars[:min(len(vars), 5)]}
}
