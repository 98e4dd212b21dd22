package inject

import (
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// filePrefix asks for file delivery: KEY=file:sm://... or
// KEY=file:text with {{ ... }} references. The variable gets the path of a
// file that holds the value, never the value. Only a whole reference or a
// value with {{ after it counts, so a literal such as file:///etc/app stays
// a literal (and {{ is never literal in a value that is not single-quoted).
const filePrefix = "file:"

// isFileDelivery reports a value that asks for file delivery.
func isFileDelivery(v string) bool {
	rest, ok := strings.CutPrefix(v, filePrefix)
	return ok && (isWholeRef(rest) || strings.Contains(rest, "{{"))
}

// TemplateFile is a whole file rendered from a template: its text with
// {{ reference | filter }} placeholders, in the grammar of env values.
// Nothing else in the text is interpreted ($ and \ stay as they are).
type TemplateFile struct {
	Name string      // the template's own file name, for errors
	Dest string      // the name of the file it renders to (Options.FilePath maps it)
	Mode fs.FileMode // the rendered file's mode; 0 means 0400
	Data []byte
}

// Delivered is one value delivered as a file: a variable's (Var is set,
// and the variable holds Path) or a template's. Value prints
// "[redacted]".
type Delivered struct {
	Name  string // the file's name: the variable's, or the template's Dest
	Var   string // the variable that holds Path; "" for a template
	Path  string
	Mode  fs.FileMode
	Value Value
}

// defaultFileMode is the mode of a delivered file unless a template says
// otherwise: readable by its owner only.
const defaultFileMode fs.FileMode = 0o400

// Files returns the values delivered as files, sorted by name.
func (e *Env) Files() []Delivered {
	out := make([]Delivered, len(e.d.files))
	for i, f := range e.d.files {
		out[i] = Delivered{Name: f.name, Var: f.varName, Path: f.path, Mode: f.mode, Value: Value{v: &e.d.files[i].envVar}}
	}
	return out
}

// envFile is a rendered delivered file.
type envFile struct {
	envVar  // name is the file's name; value its contents
	varName string
	path    string
	mode    fs.FileMode
}

// FileNames returns the names of the files the template delivers
// (variables with file:, then templates), sorted.
func (t *Template) FileNames() []string {
	var out []string
	for _, n := range t.names {
		if t.final[n].delivered {
			out = append(out, n)
		}
	}
	for _, e := range t.tfiles {
		out = append(out, e.name)
	}
	slices.Sort(out)
	return out
}

// templates parses Options.Templates into entries delivered as files.
func (p *parser) templates(opts Options) {
	seen := map[string]bool{}
	for _, tf := range opts.Templates {
		e := &entry{name: tf.Dest, file: tf.Name, delivered: true, tmpl: true, mode: tf.Mode}
		switch {
		case seen[tf.Dest] || (p.final[tf.Dest] != nil && p.final[tf.Dest].delivered):
			p.errs = append(p.errs, configErr(tf.Name, 0, "", "", "the file "+strconv.Quote(tf.Dest)+" is written twice"))
			continue
		case opts.FilePath == nil:
			p.errs = append(p.errs, configErr(tf.Name, 0, "", "", "templates need a directory to write to"))
			continue
		}
		seen[tf.Dest] = true
		p.templateText(e, string(tf.Data))
		p.tfiles = append(p.tfiles, e)
	}
}

// templateText splits a template's text into literal text and {{ }}
// references, each with its line.
func (p *parser) templateText(e *entry, src string) {
	line := 1
	for {
		i := strings.Index(src, "{{")
		if i < 0 {
			e.segs = append(e.segs, segment{lit: src})
			break
		}
		e.segs = append(e.segs, segment{lit: src[:i]})
		line += strings.Count(src[:i], "\n")
		end := strings.Index(src[i+2:], "}}")
		if end < 0 {
			p.errs = append(p.errs, configErr(e.file, line, "", "", "unterminated {{ at character "+strconv.Itoa(1+utf8.RuneCountInString(src[:i]))+" of the line"))
			return
		}
		text := src[i+2 : i+2+end]
		if strings.Contains(text, "\n") {
			p.errs = append(p.errs, configErr(e.file, line, "", "", "a {{ }} reference spans lines"))
			return
		}
		ref, fs, err := parseInline(text)
		if err != nil {
			shown := ""
			if looksLikeRef(text) {
				shown = "{{" + text + "}}"
			}
			p.errs = append(p.errs, configErr(e.file, line, "", shown, err.Error()))
		} else {
			e.segs = append(e.segs, segment{use: &use{text: "{{" + text + "}}", ref: ref, filters: fs, line: line}})
		}
		src = src[i+2+end+2:]
	}
	e.secret = true
}

// checkDelivery refuses file: without a directory to write to.
func (p *parser) checkDelivery(opts Options) {
	if opts.FilePath != nil {
		return
	}
	for _, n := range sortedKeys(p.final) {
		if e := p.final[n]; e.delivered {
			p.errs = append(p.errs, configErr(e.file, e.line, e.name, "", "file: delivery needs a directory to write files to"))
		}
	}
}

// deliver turns a rendered entry delivered as a file into its file, and
// returns the path that the variable holds instead of the value.
func (r *renderer) deliver(e *entry, content string) string {
	path := r.filePath(e.name)
	mode := e.mode
	if mode == 0 {
		mode = defaultFileMode
	}
	varName := e.name
	if e.tmpl {
		varName = ""
	}
	r.files = append(r.files, envFile{envVar: envVar{name: e.name, value: content, sensitive: true}, varName: varName, path: path, mode: mode})
	return path
}

// lineIn is the line of a use in entry e: its own in a template.
func (u *use) lineIn(e *entry) int {
	if u.line != 0 {
		return u.line
	}
	return e.line
}

// varName is the variable an entry defines; "" for a template.
func (e *entry) varName() string {
	if e.tmpl {
		return ""
	}
	return e.name
}

// changedFiles names the delivered files that differ between a and b,
// as "NAME (file)".
func changedFiles(a, b []envFile) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range a {
		seen[f.name] = true
		i := slices.IndexFunc(b, func(g envFile) bool { return g.name == f.name })
		if i < 0 || b[i].value != f.value || b[i].mode != f.mode || b[i].path != f.path {
			out = append(out, f.name+" (file)")
		}
	}
	for _, g := range b {
		if !seen[g.name] {
			out = append(out, g.name+" (file)")
		}
	}
	return out
}
