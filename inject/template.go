package inject

import (
	"cmp"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// File is one template env file's name and contents. Name appears in
// errors; "-" conventionally means standard input.
type File struct {
	Name string
	Data []byte
}

// Options say what the child inherits and where ${VAR} looks.
type Options struct {
	// Environ is rolesenv's own environment, as os.Environ returns it.
	// ${VAR} falls back to it, and the child inherits it minus every
	// ROLESENV_* variable (unless CleanEnv).
	Environ []string
	// FromEnv also resolves inherited variables whose whole value is a
	// reference.
	FromEnv bool
	// CleanEnv passes only the files' variables and KeepEnv's names.
	CleanEnv bool
	KeepEnv  []string
	// FilePath maps the name of a file delivered as a file (a variable
	// whose value starts with file:, or a template's Dest) to the path the
	// variable holds. Without it, file: and Templates are errors.
	FilePath func(name string) string
	// Templates are whole files rendered with the same references.
	Templates []TemplateFile
	// Remove names inherited variables the child must not get, and Set
	// places variables last, over inherited and file ones, taken
	// literally. They are for the container-credentials endpoint, which
	// replaces the AWS credential variables of the child.
	Remove []string
	Set    []Setting
}

// Setting is a variable placed by Options.Set. It prints "[redacted]".
type Setting struct {
	redacted
	s *setting
}

type setting struct {
	name, value string
	sensitive   bool
}

// NewSetting makes a Setting; a sensitive one is masked by render unless
// revealed, as a secret is.
func NewSetting(name, value string, sensitive bool) Setting {
	return Setting{s: &setting{name: name, value: value, sensitive: sensitive}}
}

// environFile is the File name of errors about inherited variables.
const environFile = "environment"

// sensitiveInherited are inherited variables that hold credentials: render
// masks them as it masks secrets.
var sensitiveInherited = map[string]bool{
	"AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_SECURITY_TOKEN": true,
	"AWS_CONTAINER_AUTHORIZATION_TOKEN": true,
}

// Template is parsed env files plus what the child inherits: everything
// needed to render the child's environment from a set of fetched values,
// again and again, without parsing anything twice.
type Template struct {
	redacted
	final    map[string]*entry // the variables the child gets, by name
	names    []string          // sorted
	fetches  []Fetch           // distinct, needed by the final variables
	uses     []Use             // references needed by the final variables
	warnings []string
	tfiles   []*entry                 // templates delivered as files, in the order given
	filePath func(name string) string // Options.FilePath
}

// Use is one reference as written in one variable of a template: where it
// stands and what it asks for. It holds no value.
type Use struct {
	File string // env file, or "environment" for an inherited variable (Options.FromEnv)
	Line int    // line of the variable's key; 0 for an inherited variable
	Var  string
	// Text is the reference as errors show it: ${VAR} expanded, {{ }}
	// included for an inline one.
	Text    string
	Ref     Ref
	Filters []string // in the order they apply
}

// entry is one variable definition: in a file, inherited, or set.
type entry struct {
	name, file string
	line       int
	segs       []segment
	secret     bool   // depends on a fetched value
	lit        string // the value, when !secret
	sensitive  bool
	delivered  bool        // as a file: the variable holds its path (file:, or a template)
	tmpl       bool        // a template (not a variable)
	mode       fs.FileMode // of a template's file
}

// segment is a piece of a value: literal text, a reference, or the value
// of another variable that depends on a secret.
type segment struct {
	lit string
	use *use
	dep *entry
}

// use is one reference as written in a value.
type use struct {
	text    string // as written, for errors and logs
	ref     Ref
	filters []string
	line    int // in a template; 0 means the entry's line
}

// Parse reads the env files in order (later files win) over the inherited
// environment. It reports every problem it finds, as Errors.
func Parse(files []File, opts Options) (*Template, error) {
	p := newParser(opts.Environ)
	p.inherit(opts)
	for _, f := range files {
		p.file(f)
	}
	p.set(opts.Set)
	p.templates(opts)
	p.checkDelivery(opts)
	if err := join(p.errs); err != nil {
		return nil, err
	}
	t := p.template()
	t.filePath = opts.FilePath
	return t, nil
}

func newParser(environ []string) *parser {
	p := &parser{
		env:      map[string]string{},
		envEntry: map[string]*entry{},
		earlier:  map[string]*entry{},
		final:    map[string]*entry{},
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			p.env[k] = v
		}
	}
	return p
}

// inherit takes in rolesenv's environment, but for ROLESENV_* names: every
// variable is there for ${VAR}, and the child gets those that CleanEnv,
// KeepEnv and Remove let through.
func (p *parser) inherit(opts Options) {
	keep := p.keepSet(opts.KeepEnv)
	remove := map[string]bool{}
	for _, k := range opts.Remove {
		remove[k] = true
	}
	for _, k := range sortedKeys(p.env) {
		if isReserved(k) {
			continue
		}
		e := p.inherited(k, p.env[k], opts.FromEnv)
		p.envEntry[k] = e
		if !remove[k] && (!opts.CleanEnv || keep[k]) {
			p.final[k] = e
		}
	}
}

// keepSet is the set of KeepEnv's names; a ROLESENV_* name is an error.
func (p *parser) keepSet(names []string) map[string]bool {
	keep := map[string]bool{}
	for _, k := range names {
		if isReserved(k) {
			p.errs = append(p.errs, configErr("", 0, "", "", "--keep-env cannot pass "+k+": ROLESENV_* variables never reach the command"))
			continue
		}
		keep[k] = true
	}
	return keep
}

// inherited is the entry of an inherited variable: its value, taken
// literally, or with fromEnv the reference that its whole value is.
func (p *parser) inherited(k, v string, fromEnv bool) *entry {
	e := &entry{name: k, file: environFile, lit: v, sensitive: sensitiveInherited[k]}
	if fromEnv && isFileDelivery(v) && isWholeRef(v[len(filePrefix):]) {
		e.delivered, v = true, v[len(filePrefix):]
	}
	if !fromEnv || !isWholeRef(v) {
		return e
	}
	ref, err := ParseRef(v)
	if err != nil {
		p.errs = append(p.errs, configErr(environFile, 0, k, v, err.Error()))
		return e
	}
	e.segs, e.secret, e.lit = []segment{{use: &use{text: v, ref: ref}}}, true, ""
	return e
}

// set places Options.Set's variables last, over every other.
func (p *parser) set(settings []Setting) {
	for _, st := range settings {
		s := st.s
		if s == nil || !ValidName(s.name) {
			p.errs = append(p.errs, configErr("", 0, "", "", "invalid variable name in a setting"))
			continue
		}
		p.final[s.name] = &entry{name: s.name, file: "rolesenv", lit: s.value, sensitive: s.sensitive}
	}
}

// template is what the final variables need: the references they use,
// directly or through the variables they expand, and the distinct
// fetches of those.
func (p *parser) template() *Template {
	t := &Template{final: p.final, names: sortedKeys(p.final), warnings: p.warnings, tfiles: p.tfiles}
	c := collector{t: t, seen: map[Fetch]bool{}, visited: map[*entry]bool{}}
	for _, n := range t.names {
		c.visit(t.final[n])
	}
	for _, e := range p.tfiles {
		c.visit(e)
	}
	// In the order of Render's errors, so that a caller can line the two up.
	slices.SortStableFunc(t.uses, func(a, b Use) int { return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line)) })
	return t
}

// collector gathers a template's uses and fetches, visiting each entry
// once.
type collector struct {
	t       *Template
	seen    map[Fetch]bool
	visited map[*entry]bool
}

func (c *collector) visit(e *entry) {
	if c.visited[e] || !e.secret {
		return
	}
	c.visited[e] = true
	for _, s := range e.segs {
		switch {
		case s.dep != nil:
			c.visit(s.dep)
		case s.use != nil:
			c.t.uses = append(c.t.uses, Use{File: e.file, Line: s.use.lineIn(e), Var: e.varName(), Text: s.use.text, Ref: s.use.ref, Filters: s.use.filters})
			if f := s.use.ref.Fetch; !c.seen[f] {
				c.seen[f] = true
				c.t.fetches = append(c.t.fetches, f)
			}
		}
	}
}

// Fetches returns the distinct fetches the child's environment needs (a
// reference overridden by a later file is not needed), in the order of
// the variables' names.
func (t *Template) Fetches() []Fetch { return slices.Clone(t.fetches) }

// Polled reports whether a watch polls anything for this template: a
// reference not pinned to a version. Without one, no check is needed.
func (t *Template) Polled() bool {
	return slices.ContainsFunc(t.fetches, func(f Fetch) bool { return !f.Pinned() })
}

// References is the number of references the child's environment uses
// (counting every use, so at least len(Fetches())).
func (t *Template) References() int { return len(t.uses) }

// Uses returns every reference the child's environment needs, one per
// variable and reference (a reference overridden by a later file is not
// needed; one in a variable that a needed one expands is), sorted by file
// name and line as Render's errors are, and within a variable in the
// order written.
func (t *Template) Uses() []Use {
	out := slices.Clone(t.uses)
	for i := range out {
		out[i].Filters = slices.Clone(out[i].Filters)
	}
	return out
}

// Names returns the names of the child's variables, sorted.
func (t *Template) Names() []string { return slices.Clone(t.names) }

// Warnings are problems that do not stop rolesenv, such as ${VAR} of an
// unset variable (which expands to nothing, as in godotenv and the shell).
// They name files, lines and variables only.
func (t *Template) Warnings() []string { return slices.Clone(t.warnings) }

func isReserved(name string) bool { return strings.HasPrefix(name, "ROLESENV_") }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

type parser struct {
	env      map[string]string // rolesenv's environment
	envEntry map[string]*entry // inherited variables (all but ROLESENV_*), for ${VAR}
	earlier  map[string]*entry // variables of earlier files, latest definition
	final    map[string]*entry
	tfiles   []*entry
	errs     []error
	warnings []string
}

func (p *parser) file(f File) {
	stmts, err := lexEnv(f.Name, f.Data)
	if err != nil {
		p.errs = flatten(p.errs, err)
		return
	}
	local := map[string]*entry{}
	for _, st := range stmts {
		if prev, ok := local[st.name]; ok {
			p.errs = append(p.errs, configErr(f.Name, st.line, st.name, "", "defined twice in this file (first on line "+strconv.Itoa(prev.line)+")"))
			continue
		}
		if isReserved(st.name) {
			p.errs = append(p.errs, configErr(f.Name, st.line, st.name, "", "ROLESENV_* names are reserved for rolesenv's own settings and never reach the command"))
			continue
		}
		e := &entry{name: st.name, file: f.Name, line: st.line}
		s := scanner{p: p, e: e, local: local}
		s.value(st)
		local[st.name] = e
	}
	for name, e := range local {
		p.earlier[name] = e
		p.final[name] = e
	}
}

// scanner turns one statement's value into segments.
type scanner struct {
	p     *parser
	e     *entry
	local map[string]*entry
	lit   strings.Builder
}

func (s *scanner) fail(ref, msg string) {
	s.p.errs = append(s.p.errs, configErr(s.e.file, s.e.line, s.e.name, ref, msg))
}

func (s *scanner) flush() {
	if s.lit.Len() > 0 {
		s.e.segs = append(s.e.segs, segment{lit: s.lit.String()})
		s.lit.Reset()
	}
}

// value fills s.e from a statement: a literal (single quotes), a
// whole-value reference, or text with ${VAR} and {{ }} references.
func (s *scanner) value(st statement) {
	defer s.done()
	dq := st.quote == '"'
	switch {
	case st.quote == '\'':
		s.lit.WriteString(st.text)
	case isFileDelivery(st.text):
		s.e.delivered = true
		if rest := st.text[len(filePrefix):]; isWholeRef(rest) {
			s.wholeRef(rest, dq)
		} else {
			s.mixed(rest, dq)
		}
	case isWholeRef(st.text):
		s.wholeRef(st.text, dq)
	default:
		s.mixed(st.text, dq)
	}
}

// wholeRef reads a value that is one reference.
func (s *scanner) wholeRef(src string, dq bool) {
	text, ok := s.text(src, dq)
	if !ok {
		return
	}
	ref, err := ParseRef(text)
	if err != nil {
		s.fail(text, err.Error())
		return
	}
	s.e.segs = append(s.e.segs, segment{use: &use{text: text, ref: ref}})
}

// mixed reads a value of literal text, escapes, $ expansions and {{ }}
// references.
func (s *scanner) mixed(src string, dq bool) {
	for i := 0; i < len(src); {
		switch c := src[i]; {
		case c == '\\':
			i += s.escape(src[i:], dq, &s.lit)
		case c == '$':
			i += s.expand(src[i:])
		case c == '{' && i+1 < len(src) && src[i+1] == '{':
			n, ok := s.inline(src, i, dq)
			if !ok {
				return
			}
			i += n
		default:
			s.lit.WriteByte(c)
			i++
		}
	}
}

// expand handles $NAME or ${NAME} at src[0] and returns the bytes it
// used. A variable that depends on a secret becomes a segment of its own.
func (s *scanner) expand(src string) int {
	n, name, ok := s.dollar(src)
	switch {
	case !ok:
	case name == "":
		s.lit.WriteByte('$')
	default:
		dep, val, found := s.lookup(name)
		switch {
		case !found:
		case dep != nil:
			s.flush()
			s.e.segs = append(s.e.segs, segment{dep: dep})
		default:
			s.lit.WriteString(val)
		}
	}
	return n
}

// inline handles the {{ at src[i] and returns the bytes it used up to
// the closing }}. ok is false when there is none: nothing after it in the
// value can be read.
func (s *scanner) inline(src string, i int, dq bool) (n int, ok bool) {
	end := strings.Index(src[i+2:], "}}")
	if end < 0 {
		s.fail("", "unterminated {{ at character "+strconv.Itoa(1+utf8.RuneCountInString(src[:i]))+" of the value (to write {{ literally, single-quote the value)")
		return 0, false
	}
	if text, ok := s.text(src[i+2:i+2+end], dq); ok {
		s.inlineRef(text)
	}
	return 2 + end + 2, true
}

// inlineRef adds the reference and filters written inside {{ }}.
func (s *scanner) inlineRef(text string) {
	shown := ""
	if looksLikeRef(text) {
		shown = "{{" + text + "}}"
	}
	ref, filters, err := parseInline(text)
	if err != nil {
		msg := err.Error()
		if shown == "" {
			msg += " inside {{ }} (to write {{ literally, single-quote the value)"
		}
		s.fail(shown, msg)
		return
	}
	s.flush()
	s.e.segs = append(s.e.segs, segment{use: &use{text: shown, ref: ref, filters: filters}})
}

// done flushes literal text and works out whether the entry is literal.
func (s *scanner) done() {
	s.flush()
	var b strings.Builder
	for _, seg := range s.e.segs {
		if seg.use != nil || seg.dep != nil {
			s.e.secret = true
			return
		}
		b.WriteString(seg.lit)
	}
	s.e.lit = b.String()
	s.e.segs = nil
}

// escape handles a backslash at src[0] and returns how many bytes it
// used. In double quotes \n and \r are a newline and a carriage return
// and any other escaped character stands for itself; unquoted, only \$ is
// an escape (godotenv's rules).
func (s *scanner) escape(src string, dq bool, out *strings.Builder) int {
	if len(src) < 2 {
		out.WriteByte('\\')
		return 1
	}
	if !dq {
		if src[1] == '$' {
			out.WriteByte('$')
			return 2
		}
		out.WriteByte('\\')
		return 1
	}
	switch src[1] {
	case 'n':
		out.WriteByte('\n')
		return 2
	case 'r':
		out.WriteByte('\r')
		return 2
	}
	_, size := utf8.DecodeRuneInString(src[1:])
	out.WriteString(src[1 : 1+size])
	return 1 + size
}

// dollar parses $NAME or ${NAME} at src[0] and returns the bytes used
// and the name. A $ not followed by a name is literal (name ""); a
// malformed ${...} is an error (ok false).
func (s *scanner) dollar(src string) (n int, name string, ok bool) {
	if len(src) > 1 && src[1] == '{' {
		end := strings.IndexByte(src, '}')
		if end < 0 || !ValidName(src[2:end]) {
			s.fail("", "malformed ${...}: only ${NAME} and $NAME are expanded (write \\$ for a literal $, or single-quote the value)")
			if end < 0 {
				return len(src), "", false
			}
			return end + 1, "", false
		}
		return end + 1, src[2:end], true
	}
	j := 1
	for j < len(src) && isNameByte(src[j], j == 1) {
		j++
	}
	return j, src[1:j], true
}

// lookup finds ${name}: earlier in this file, then earlier files, then
// rolesenv's environment. A variable that depends on a secret comes back
// as dep; any other as its text, and a sensitive one (an inherited
// credential) makes the value it expands into sensitive too.
func (s *scanner) lookup(name string) (dep *entry, val string, found bool) {
	if isReserved(name) {
		s.fail("", "${"+name+"} is not expanded: ROLESENV_* variables are rolesenv's own settings and never reach the command")
		return nil, "", false
	}
	e := s.local[name]
	if e == nil {
		e = s.p.earlier[name]
	}
	if e == nil {
		e = s.p.envEntry[name]
	}
	if e == nil {
		// The name is not shown: after a $ in an unquoted value it may be
		// part of a literal password.
		s.p.warnings = append(s.p.warnings, s.e.file+":"+strconv.Itoa(s.e.line)+": "+s.e.name+": a $ expansion names a variable that is not set; it expands to nothing (single-quote the value to keep a literal $)")
		return nil, "", true
	}
	if e.secret {
		return e, "", true
	}
	if e.sensitive {
		s.e.sensitive = true
	}
	return nil, e.lit, true
}

// text expands a reference's text (inside {{ }} or a whole value):
// escapes and ${VAR} of variables that do not depend on a secret, so that
// a resolved value is never read as part of a reference.
func (s *scanner) text(src string, dq bool) (string, bool) {
	var b strings.Builder
	ok := true
	for i := 0; i < len(src); {
		switch c := src[i]; {
		case c == '\\':
			i += s.escape(src[i:], dq, &b)
		case c == '$':
			n, good := s.expandInRef(src[i:], &b)
			i += n
			ok = ok && good
		case c == '{' && i+1 < len(src) && src[i+1] == '{':
			s.fail("", "{{ inside a reference")
			return "", false
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), ok
}

// expandInRef handles $NAME or ${NAME} at src[0] inside a reference and
// returns the bytes it used; good is false for a malformed one or a
// variable that depends on a secret.
func (s *scanner) expandInRef(src string, b *strings.Builder) (n int, good bool) {
	n, name, ok := s.dollar(src)
	if !ok {
		return n, false
	}
	if name == "" {
		b.WriteByte('$')
		return n, true
	}
	dep, val, found := s.lookup(name)
	if dep != nil {
		s.fail("", "${"+name+"} inside a reference depends on a secret; a reference is never built from a secret value")
		return n, false
	}
	if found {
		b.WriteString(val)
	}
	return n, true
}

// looksLikeRef reports text that starts like a reference, so an error
// about it may show it. Anything else between {{ and }} might be a
// literal that happens to contain braces, and is never shown.
func looksLikeRef(text string) bool {
	t := strings.TrimLeft(text, " \t")
	for _, p := range []string{"sm://", "ssm://", "arn:", "resolve:"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// parseInline parses the inside of {{ }}: a reference, then filters
// separated by '|'. Spaces around each part are optional.
func parseInline(text string) (Ref, []string, error) {
	parts := strings.Split(text, "|")
	ref, err := ParseRef(strings.Trim(parts[0], " \t"))
	if err != nil {
		return Ref{}, nil, err
	}
	var fs []string
	for _, f := range parts[1:] {
		f = strings.Trim(f, " \t")
		if _, ok := filters[f]; !ok {
			if f == "" {
				return Ref{}, nil, errEmptyFilter
			}
			if isToken(f) && len(f) <= 32 {
				return Ref{}, nil, errUnknownFilter(f)
			}
			return Ref{}, nil, errUnknownFilter("")
		}
		fs = append(fs, f)
	}
	return ref, fs, nil
}

var errEmptyFilter = errors.New("empty filter after '|'")

func errUnknownFilter(name string) error {
	if name == "" {
		return errors.New("unknown filter (want urlquery, base64, base64decode, json or trim)")
	}
	return errors.New("unknown filter " + strconv.Quote(name) + " (want urlquery, base64, base64decode, json or trim)")
}
