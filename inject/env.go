package inject

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Env is a rendered environment: the child's variables with their values.
// Every generic way of printing it prints "[redacted]"; the values come out
// only through Environ (for exec) and Value.Reveal.
type Env struct {
	redacted
	// The data is behind a pointer: fmt prints the fields of a value it
	// cannot format (%p of a struct) but only the address of a pointer
	// inside it.
	d *envData
}

type envData struct {
	vars   []envVar  // sorted by name
	files  []envFile // delivered as files, sorted by name
	digest [sha256.Size]byte
}

type envVar struct {
	name, value string
	sensitive   bool
}

// Value is one variable's value. It prints "[redacted]".
type Value struct {
	redacted
	v *envVar
}

// Reveal returns the value itself.
func (v Value) Reveal() string {
	if v.v == nil {
		return ""
	}
	return v.v.value
}

// Sensitive reports a value that came from a secret or parameter (or an
// inherited credential variable): render masks it unless asked not to.
// Literal values from env files are not sensitive.
func (v Value) Sensitive() bool { return v.v != nil && v.v.sensitive }

func newEnv(vars []envVar, files []envFile) *Env {
	slices.SortFunc(vars, func(a, b envVar) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(files, func(a, b envFile) int { return strings.Compare(a.name, b.name) })
	h := sha256.New()
	for _, v := range vars {
		h.Write([]byte(v.name))
		h.Write([]byte{0})
		h.Write([]byte(v.value))
		h.Write([]byte{0})
	}
	for _, f := range files {
		// A file's contents may hold NUL: its length goes first.
		h.Write([]byte("\x00file\x00" + f.name + "\x00" + f.path + "\x00" + strconv.Itoa(len(f.value)) + "\x00" + strconv.FormatUint(uint64(f.mode), 8) + "\x00"))
		h.Write([]byte(f.value))
	}
	e := &Env{d: &envData{vars: vars, files: files}}
	h.Sum(e.d.digest[:0])
	return e
}

// Environ returns the environment as exec wants it: NAME=value strings,
// sorted by name.
func (e *Env) Environ() []string {
	out := make([]string, len(e.d.vars))
	for i, v := range e.d.vars {
		out[i] = v.name + "=" + v.value
	}
	return out
}

// Names returns the variables' names, sorted.
func (e *Env) Names() []string {
	out := make([]string, len(e.d.vars))
	for i, v := range e.d.vars {
		out[i] = v.name
	}
	return out
}

// Len is the number of variables.
func (e *Env) Len() int { return len(e.d.vars) }

// Lookup returns a variable's value.
func (e *Env) Lookup(name string) (Value, bool) {
	i, ok := slices.BinarySearchFunc(e.d.vars, name, func(v envVar, n string) int { return strings.Compare(v.name, n) })
	if !ok {
		return Value{}, false
	}
	return Value{v: &e.d.vars[i]}, true
}

// Equal reports whether two environments have the same variables and
// values. It compares digests computed once at rendering, so a watcher can
// ask it on every poll.
func (e *Env) Equal(o *Env) bool {
	if e == nil || o == nil {
		return e == o
	}
	return subtle.ConstantTimeCompare(e.d.digest[:], o.d.digest[:]) == 1
}

// Changed returns the names of the variables that differ between o and e:
// added, removed or with another value. Names only, for logs.
func (e *Env) Changed(o *Env) []string {
	var out []string
	a, b := e.d.vars, o.d.vars
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].name < b[j].name):
			out = append(out, a[i].name)
			i++
		case i == len(a) || b[j].name < a[i].name:
			out = append(out, b[j].name)
			j++
		default:
			if a[i].value != b[j].value {
				out = append(out, a[i].name)
			}
			i++
			j++
		}
	}
	return append(out, changedFiles(e.d.files, o.d.files)...)
}

// Version identifies what one fetch returned, for a watcher to compare
// with what AWS reports later.
type Version struct {
	// Secrets Manager: the secret's ARN and name, the version id and the
	// stages attached to that version when it was fetched.
	ARN       string
	Name      string
	VersionID string
	Stages    []string
	// Parameter Store: the parameter's version (Name and ARN are set too).
	Version int64
}

// Values holds what was fetched for each Fetch: a value with its Version,
// or the error that AWS answered. It prints "[redacted]".
type Values struct {
	redacted
	m map[Fetch]*fetched // fmt prints a map inside a struct, but only the addresses of its pointers
}

type fetched struct {
	val    string // SecretString or parameter value
	binary []byte // SecretBinary
	ver    Version
	err    *fetchError
}

// NewValues returns an empty set of values.
func NewValues() *Values { return &Values{m: map[Fetch]*fetched{}} }

// Clone returns a copy that can be changed without changing v.
func (v *Values) Clone() *Values {
	c := NewValues()
	for k, f := range v.m {
		c.m[k] = f
	}
	return c
}

// Merge copies every fetch of o into v (o wins).
func (v *Values) Merge(o *Values) {
	for k, f := range o.m {
		v.m[k] = f
	}
}

// Fetches returns the fetches v holds an answer for.
func (v *Values) Fetches() []Fetch {
	out := make([]Fetch, 0, len(v.m))
	for k := range v.m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Fetch) int { return strings.Compare(a.String()+a.Region, b.String()+b.Region) })
	return out
}

// Version returns what identifies the value fetched for f; ok is false
// when f was not fetched or failed.
func (v *Values) Version(f Fetch) (Version, bool) {
	r, ok := v.m[f]
	if !ok || r.err != nil {
		return Version{}, false
	}
	return r.ver, true
}

// Err returns the error fetching f failed with, or nil.
func (v *Values) Err(f Fetch) error {
	if r, ok := v.m[f]; ok && r.err != nil {
		return r.err
	}
	return nil
}

func (v *Values) set(f Fetch, r *fetched) { v.m[f] = r }

// Render computes the child's environment from fetched values. It applies
// JSON keys and filters and reports every variable it cannot render (a
// fetch that failed, a missing key, a NUL byte), as Errors. Resolved
// values are never scanned again.
func (t *Template) Render(v *Values) (*Env, error) {
	r := renderer{vals: v, memo: map[*entry]*rendered{}, filePath: t.filePath}
	vars := make([]envVar, 0, len(t.names))
	for _, name := range t.names {
		out := r.entry(t.final[name])
		if out.failed {
			continue
		}
		vars = append(vars, envVar{name: name, value: out.val, sensitive: out.sensitive})
	}
	for _, e := range t.tfiles {
		r.entry(e)
	}
	if err := join(r.errs); err != nil {
		return nil, err
	}
	return newEnv(vars, r.files), nil
}

type rendered struct {
	val       string
	sensitive bool
	failed    bool
}

type renderer struct {
	vals     *Values
	memo     map[*entry]*rendered
	errs     []error
	filePath func(string) string
	files    []envFile
}

func (r *renderer) entry(e *entry) *rendered {
	if out, ok := r.memo[e]; ok {
		return out
	}
	out := &rendered{sensitive: e.sensitive}
	r.memo[e] = out
	if !e.secret {
		out.val = e.lit
		return out
	}
	out.sensitive = true
	var b strings.Builder
	for _, s := range e.segs {
		switch {
		case s.dep != nil:
			d := r.entry(s.dep)
			if d.failed {
				// The failure is reported where the reference is written.
				out.failed = true
				continue
			}
			b.WriteString(d.val)
		case s.use != nil:
			val, err := r.use(e, s.use)
			if err != nil {
				r.errs = append(r.errs, err)
				out.failed = true
				continue
			}
			b.WriteString(val)
		default:
			b.WriteString(s.lit)
		}
	}
	out.val = b.String()
	if e.delivered && !out.failed {
		out.val, out.sensitive = r.deliver(e, out.val), false
	}
	return out
}

// use resolves one reference in one variable.
func (r *renderer) use(e *entry, u *use) (string, error) {
	fail := func(c class, code string, err error) error {
		return &ResolveError{File: e.file, Line: u.lineIn(e), Var: e.varName(), Ref: u.text, Code: code, Err: err, class: c}
	}
	f, ok := r.vals.m[u.ref.Fetch]
	if !ok {
		return "", fail(classOther, "", errors.New("not fetched"))
	}
	if f.err != nil {
		return "", fail(f.err.class, f.err.code, f.err)
	}
	val := f.val
	if f.binary != nil {
		if u.ref.Key != "" || u.ref.Pointer != "" {
			return "", fail(classConfig, "", errors.New("the secret is binary (SecretBinary), so it has no JSON key"))
		}
		val = base64.StdEncoding.EncodeToString(f.binary)
	}
	val, err := extract(val, u.ref.Key, u.ref.Pointer)
	if err != nil {
		return "", fail(classConfig, "", err)
	}
	for _, name := range u.filters {
		if val, err = filters[name](val); err != nil {
			return "", fail(classConfig, "", err)
		}
	}
	if strings.IndexByte(val, 0) >= 0 && !e.delivered {
		return "", fail(classConfig, "", errors.New("the value contains a NUL byte, which an environment variable cannot hold"))
	}
	return val, nil
}
