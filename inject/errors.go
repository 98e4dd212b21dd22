package inject

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// class is how a caller should treat an error: rolesenv's exit codes
// follow it (78 config, 77 access denied, 69 unavailable).
type class uint8

const (
	classOther       class = iota
	classConfig            // a template, reference or configuration mistake
	classDenied            // access denied (IAM, KMS, credentials refused)
	classUnavailable       // AWS unreachable, throttled or failing after retries
)

// ResolveError is one problem with one variable of a template: a syntax
// error in an env file, a malformed reference, a reference that could not
// be fetched or applied. It names the file, line, variable and reference,
// and never holds a value.
type ResolveError struct {
	File string // env file name as given ("-" for stdin, "environment" for --from-env)
	Line int    // 1-based line of the variable's key; 0 when unknown
	Var  string // the variable's name; "" for errors before a name is known
	Ref  string // the reference as written; "" when there is none (or it must not be shown)
	Code string // the AWS error code, when AWS answered with one
	Err  error

	class class
}

func (e *ResolveError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Var != "" {
		b.WriteString(e.Var)
		b.WriteString(": ")
	}
	if e.Ref != "" {
		b.WriteString(e.Ref)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("unknown error")
	}
	return b.String()
}

func (e *ResolveError) Unwrap() error { return e.Err }

// Config reports a template, reference or configuration mistake (exit 78).
func (e *ResolveError) Config() bool { return e.class == classConfig }

// AccessDenied reports that AWS refused access (exit 77).
func (e *ResolveError) AccessDenied() bool { return e.class == classDenied }

// Unavailable reports that AWS could not be reached or kept failing after
// retries (exit 69).
func (e *ResolveError) Unavailable() bool { return e.class == classUnavailable }

// Errors is every problem found in one run, sorted by file and line. Each
// is a *ResolveError (or an error that classifies itself the same way).
type Errors []error

// Error gives one line per problem. A failure shared by several
// references (no credentials, no region, the start-up deadline) is given
// once, followed by the references it left unresolved.
func (es Errors) Error() string {
	var lines, order []string
	shared := map[string][]*ResolveError{}
	for _, e := range es {
		var re *ResolveError
		var fe *fetchError
		if errors.As(e, &re) && errors.As(re.Err, &fe) && fe.shared {
			key := fe.sharedText()
			if shared[key] == nil {
				order = append(order, key)
			}
			shared[key] = append(shared[key], re)
			continue
		}
		lines = append(lines, e.Error())
	}
	for _, key := range order {
		group := shared[key]
		if len(group) == 1 {
			lines = append(lines, group[0].Error())
			continue
		}
		lines = append(lines, key,
			strconv.Itoa(len(group))+" references not resolved because of it: "+places(group))
	}
	return strings.Join(lines, "\n")
}

// places lists where the references are, each place once (with the
// number of its references when there are several, as in a variable
// that uses two secrets), at most eight places.
func places(group []*ResolveError) string {
	const most = 8
	var order []string
	count := map[string]int{}
	for _, re := range group {
		w := re.where()
		if count[w] == 0 {
			order = append(order, w)
		}
		count[w]++
	}
	var out []string
	for i, w := range order {
		if i == most {
			out = append(out, "and "+strconv.Itoa(len(order)-most)+" more")
			break
		}
		if n := count[w]; n > 1 {
			w += " (" + strconv.Itoa(n) + ")"
		}
		out = append(out, w)
	}
	return strings.Join(out, ", ")
}

// where is "file:line VAR", as a reference is listed under a shared failure.
func (e *ResolveError) where() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Var != "" {
		s += " " + e.Var
	}
	return strings.TrimSpace(s)
}

// Unwrap gives every error to errors.Is, errors.As and rolesenv's
// exit-code walk.
func (es Errors) Unwrap() []error { return es }

// join returns nil for no errors, the errors sorted by file and line
// otherwise.
func join(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	out := slices.Clone(errs)
	slices.SortStableFunc(out, func(a, b error) int {
		var ra, rb *ResolveError
		errors.As(a, &ra)
		errors.As(b, &rb)
		if ra == nil || rb == nil {
			return 0
		}
		return cmp.Or(cmp.Compare(ra.File, rb.File), cmp.Compare(ra.Line, rb.Line))
	})
	return Errors(out)
}

// flatten appends err to list, expanding an Errors list.
func flatten(list []error, err error) []error {
	if err == nil {
		return list
	}
	var es Errors
	if errors.As(err, &es) {
		return append(list, es...)
	}
	return append(list, err)
}

// configErr is a template or reference mistake with its own message.
func configErr(file string, line int, name, ref, msg string) *ResolveError {
	return &ResolveError{File: file, Line: line, Var: name, Ref: ref, Err: errors.New(msg), class: classConfig}
}
