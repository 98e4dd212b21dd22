package inject

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFileSize bounds one env file. An environment larger than a few MiB
// cannot be passed to exec anyway.
const MaxFileSize = 8 << 20

// statement is one KEY=value of an env file before expansion and reference
// scanning.
type statement struct {
	name  string
	line  int    // line of the key
	quote byte   // 0 (unquoted), '\'' or '"'
	text  string // unquoted: trimmed, comment removed; quoted: the inside, escapes not yet processed
}

// lexEnv splits an env file into statements, following godotenv's grammar
// (see the package documentation for the deliberate differences). It stops
// at the first lexical error: after an unterminated quote nothing that
// follows can be trusted. Errors name the file, line and column, never the
// text.
func lexEnv(file string, src []byte) ([]statement, error) {
	if len(src) > MaxFileSize {
		return nil, configErr(file, 0, "", "", "file is larger than "+strconv.Itoa(MaxFileSize>>20)+" MiB")
	}
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	if i := bytes.IndexByte(src, 0); i >= 0 {
		return nil, configErr(file, 1+bytes.Count(src[:i], []byte("\n")), "", "", "NUL byte in file")
	}
	l := lexer{file: file, src: src, line: 1}
	var out []statement
	for {
		l.skipBlank()
		if l.pos >= len(l.src) {
			return out, nil
		}
		st, err := l.statement()
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
}

type lexer struct {
	file      string
	src       []byte
	pos, line int
	lineStart int // offset of the current line, for columns
}

func (l *lexer) errorf(line int, msg string) error {
	return configErr(l.file, line, "", "", msg)
}

func (l *lexer) column() int {
	return 1 + utf8.RuneCount(l.src[l.lineStart:l.pos])
}

func (l *lexer) newline() {
	l.line++
	l.lineStart = l.pos + 1
}

// skipBlank skips white space (any Unicode space, newlines included) and
// comment lines.
func (l *lexer) skipBlank() {
	for l.pos < len(l.src) {
		r, size := utf8.DecodeRune(l.src[l.pos:])
		switch {
		case r == '\n':
			l.newline()
			l.pos++
		case r != utf8.RuneError && unicode.IsSpace(r):
			l.pos += size
		case r == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		default:
			return
		}
	}
}

// skipSpace skips blanks that do not end a line.
func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		r, size := utf8.DecodeRune(l.src[l.pos:])
		if !isSpace(r) {
			return
		}
		l.pos += size
	}
}

// statement reads one KEY=value (or KEY: value), with an optional
// "export " before it.
func (l *lexer) statement() (statement, error) {
	st := statement{line: l.line}
	if bytes.HasPrefix(l.src[l.pos:], []byte("export")) {
		if r, _ := utf8.DecodeRune(l.src[l.pos+len("export"):]); isSpace(r) {
			l.pos += len("export")
			l.skipSpace()
		}
	}
	start := l.pos
	for l.pos < len(l.src) && isNameByte(l.src[l.pos], l.pos == start) {
		l.pos++
	}
	st.name = string(l.src[start:l.pos])
	afterName := l.pos
	l.skipSpace()
	if l.pos >= len(l.src) || st.name == "" || (l.src[l.pos] != '=' && l.src[l.pos] != ':') {
		return st, l.nameError(st, afterName)
	}
	l.pos++ // '=' or ':'
	l.skipSpace()
	if l.pos < len(l.src) && (l.src[l.pos] == '"' || l.src[l.pos] == '\'') {
		return l.quoted(st)
	}
	end := l.pos
	for end < len(l.src) && l.src[end] != '\n' && l.src[end] != '\r' {
		end++
	}
	st.text = unquotedValue(l.src[l.pos:end])
	l.pos = end
	return st, nil
}

// nameError says what is wrong with a statement that does not start
// with a name and '=': the name ended at afterName, and l.pos is past the
// blanks that follow it.
func (l *lexer) nameError(st statement, afterName int) error {
	col := " at column " + strconv.Itoa(l.column())
	switch {
	case st.name == "" && l.pos < len(l.src) && l.src[l.pos] >= '0' && l.src[l.pos] <= '9':
		return l.errorf(st.line, "invalid variable name: a name cannot start with a digit")
	case looksLikeName(l.src[afterName:]):
		l.pos = afterName
		return l.errorf(st.line, "invalid variable name at column "+strconv.Itoa(l.column())+": names are ASCII letters, digits and _")
	case st.name != "" && l.pos > afterName && l.pos < len(l.src) && isNameByte(l.src[l.pos], false):
		return l.errorf(st.line, "invalid variable name: a name cannot contain spaces")
	case st.name == "" && l.pos < len(l.src) && (l.src[l.pos] == '=' || l.src[l.pos] == ':'):
		return l.errorf(st.line, "missing variable name before '='")
	case st.name == "":
		return l.errorf(st.line, "expected a variable name"+col)
	}
	return l.errorf(st.line, "expected '=' after the variable name"+col)
}

// unquotedValue cuts an inline comment (a # after white space) and trims
// white space, as godotenv does, except that the first such # starts the
// comment (godotenv takes the last one).
func unquotedValue(line []byte) string {
	cut := len(line)
	prev := rune(-1)
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		if r == '#' && i > 0 && isSpace(prev) {
			cut = i
			break
		}
		prev = r
		i += size
	}
	return string(bytes.TrimFunc(line[:cut], isSpace))
}

func (l *lexer) quoted(st statement) (statement, error) {
	q := l.src[l.pos]
	st.quote = q
	openLine := l.line
	l.pos++
	start := l.pos
	for {
		if l.pos >= len(l.src) {
			return st, l.errorf(openLine, "unterminated quoted value (the quote opened on this line is never closed)")
		}
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.newline()
		case c == q && (q == '"' || l.src[l.pos-1] != '\\'):
			st.text = string(l.src[start:l.pos])
			l.pos++
			l.skipSpace()
			if l.pos < len(l.src) && l.src[l.pos] != '\n' && l.src[l.pos] != '#' {
				return st, l.errorf(l.line, "unexpected text after the closing quote at column "+strconv.Itoa(l.column()))
			}
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
			return st, nil
		case c == '\\' && q == '"':
			// An escaped character never closes the value; an escaped
			// backslash is one character, so "a\\" closes.
			l.pos++
			if l.pos < len(l.src) && l.src[l.pos] == '\n' {
				l.newline()
			}
		}
		l.pos++
	}
}

// isSpace is godotenv's notion of blank within a line.
func isSpace(r rune) bool {
	switch r {
	case '\t', '\v', '\f', '\r', ' ', 0x85, 0xA0:
		return true
	}
	return false
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9')
}

// looksLikeName reports a character that godotenv would accept in a name
// but rolesenv does not: '.', '-', digits first, non-ASCII letters.
func looksLikeName(rest []byte) bool {
	r, _ := utf8.DecodeRune(rest)
	return r == '.' || r == '-' || (r > 127 && (unicode.IsLetter(r) || unicode.IsNumber(r)))
}

// ValidName reports whether name is a portable environment variable name:
// ASCII letters, digits and _, not starting with a digit.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i], i == 0) {
			return false
		}
	}
	return true
}

// QuoteDotenv writes v as the value of an env-file line ("KEY=" and the
// result) that Parse reads back as exactly v, taken literally: never a
// reference and never an expansion. The result is bare when no character
// of v means anything to the parser, in single quotes (which the parser
// takes literally) when v holds no single quote or carriage return and
// does not end in a backslash, and in double quotes with every character
// the parser acts on escaped otherwise. Whether a value would be read as
// a whole-value reference is the parser's own rule, not a list kept here.
// An env file cannot hold NUL (nor can an environment variable), so
// neither can v.
func QuoteDotenv(v string) string {
	switch {
	case bareValue(v):
		return v
	case !strings.ContainsAny(v, "'\r") && !strings.HasSuffix(v, `\`):
		return "'" + v + "'"
	}
	return doubleQuoted(v)
}

// bareValue reports a value that reads back as itself unquoted: only
// characters that neither the lexer (quotes, blanks, '#', line ends) nor
// the scanner ('$', '\', '{{') act on, and not a whole-value reference.
func bareValue(v string) bool {
	if v == "" || isWholeRef(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && strings.IndexByte("_./@%+,=:-", c) < 0 {
			return false
		}
	}
	return true
}

// doubleQuoted writes v in double quotes: '\', '"', '$' and '{' escaped
// (so that neither ${VAR} nor {{ }} is seen), newline and carriage return
// as \n and \r, and the first character escaped when the text between the
// quotes would otherwise be a whole-value reference (an escaped character
// stands for itself).
func doubleQuoted(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"', '$', '{':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
	body := b.String()
	if isWholeRef(body) {
		body = `\` + body
	}
	return `"` + body + `"`
}
