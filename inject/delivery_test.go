package inject

import (
	"fmt"
	"strings"
	"testing"
)

func deliveryOpts() Options {
	return Options{FilePath: func(name string) string { return "/run/s/" + name }}
}

// TestFileDelivery: file: gives the variable a path and the value to a
// file; everything else stays an ordinary value.
func TestFileDelivery(t *testing.T) {
	src := "PW_FILE=file:sm://db#password\n" +
		"PAIR_FILE=\"file:{{ sm://db#user }}:{{ sm://db#password | base64 }}\"\n" +
		"URL=file:///etc/app\n" +
		"PGPASS=\"file:db:5432:*:{{ sm://db#user }}:{{ sm://db#password }}\"\n" +
		"LIT='file:sm://db'\n" +
		"COPY=${PW_FILE}\n"
	tm, err := Parse([]File{{Name: "a.env", Data: []byte(src)}}, deliveryOpts())
	if err != nil {
		t.Fatal(err)
	}
	if got := tm.FileNames(); fmt.Sprint(got) != "[PAIR_FILE PGPASS PW_FILE]" {
		t.Fatalf("FileNames = %v", got)
	}
	vals := NewValues()
	vals.set(tm.Fetches()[0], &fetched{val: `{"user":"u","password":"p\u0000w"}`})
	env, err := tm.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	want := "COPY=/run/s/PW_FILE LIT=file:sm://db PAIR_FILE=/run/s/PAIR_FILE PGPASS=/run/s/PGPASS PW_FILE=/run/s/PW_FILE URL=file:///etc/app"
	if got := strings.Join(env.Environ(), " "); got != want {
		t.Fatalf("Environ = %q, want %q", got, want)
	}
	files := env.Files()
	if len(files) != 3 || files[0].Name != "PAIR_FILE" || files[2].Var != "PW_FILE" || files[2].Mode != 0o400 {
		t.Fatalf("Files = %+v", files)
	}
	if got := files[1].Value.Reveal(); got != "db:5432:*:u:p\x00w" {
		t.Fatalf("PGPASS holds %q", got)
	}
	if got := files[2].Value.Reveal(); got != "p\x00w" {
		t.Fatalf("PW_FILE holds %q", got)
	}
	if got := files[0].Value.Reveal(); got != "u:"+"cAB3" {
		t.Fatalf("PAIR_FILE holds %q", got)
	}
	if s := fmt.Sprintf("%v %+v", files, files[0]); strings.Contains(s, "p\x00w") || strings.Contains(s, "u:cAB3") {
		t.Fatal("a delivered value printed")
	}
	if v, _ := env.Lookup("PW_FILE"); v.Sensitive() {
		t.Fatal("a path is masked as a secret")
	}
}

// TestFileDeliveryChange: a change of a file's contents alone changes the
// environment's digest but not its variables.
func TestFileDeliveryChange(t *testing.T) {
	tm, err := Parse([]File{{Name: "a.env", Data: []byte("PW_FILE=file:sm://db\nA=1\n")}}, deliveryOpts())
	if err != nil {
		t.Fatal(err)
	}
	render := func(v string) *Env {
		vals := NewValues()
		vals.set(tm.Fetches()[0], &fetched{val: v})
		env, err := tm.Render(vals)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	a, b := render("one"), render("two")
	if a.Equal(b) || !a.Equal(render("one")) {
		t.Fatal("Equal ignores delivered files")
	}
	if strings.Join(a.Environ(), " ") != strings.Join(b.Environ(), " ") {
		t.Fatal("the variables changed")
	}
	if got := b.Changed(a); fmt.Sprint(got) != "[PW_FILE (file)]" {
		t.Fatalf("Changed = %v", got)
	}
}

// TestTemplateFiles: a template renders references and filters and
// leaves $ and \ alone; errors name the template and line.
func TestTemplateFiles(t *testing.T) {
	opts := deliveryOpts()
	opts.Templates = []TemplateFile{{Name: "pgb.tmpl", Dest: "pgbouncer.ini", Mode: 0o440,
		Data: []byte("[db]\n$x \\n\nauth = {{ sm://db#user }}:{{sm://db#password|urlquery}}\n")}}
	tm, err := Parse(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if u := tm.Uses(); len(u) != 2 || u[0].File != "pgb.tmpl" || u[0].Line != 3 || u[0].Var != "" {
		t.Fatalf("Uses = %+v", u)
	}
	vals := NewValues()
	vals.set(tm.Fetches()[0], &fetched{val: `{"user":"u","password":"a b"}`})
	env, err := tm.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	f := env.Files()
	if len(f) != 1 || f[0].Var != "" || f[0].Mode != 0o440 || f[0].Path != "/run/s/pgbouncer.ini" {
		t.Fatalf("Files = %+v", f)
	}
	if got, want := f[0].Value.Reveal(), "[db]\n$x \\n\nauth = u:a%20b\n"; got != want {
		t.Fatalf("rendered %q, want %q", got, want)
	}
	if env.Len() != 0 {
		t.Fatal("a template added a variable")
	}

	for _, tt := range []struct{ data, want string }{
		{"a\nb {{ sm://x", "pgb.tmpl:2: unterminated {{"},
		{"{{ sm://x | nope }}", `pgb.tmpl:1: {{ sm://x | nope }}: unknown filter "nope"`},
		{"{{ hunter2 }}", "pgb.tmpl:1: unknown reference scheme"},
	} {
		opts.Templates[0].Data = []byte(tt.data)
		_, err := Parse(nil, opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: err = %v, want %q", tt.data, err, tt.want)
		}
	}
}

// TestFileDeliveryNeedsDirectory: without FilePath, file: is an error.
func TestFileDeliveryNeedsDirectory(t *testing.T) {
	_, err := Parse([]File{{Name: "a.env", Data: []byte("P=file:sm://x")}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "a.env:1: P: file: delivery needs a directory") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzTemplateFile: any template text parses or fails with errors that
// never quote text that is not a reference.
func FuzzTemplateFile(f *testing.F) {
	for _, s := range []string{"a={{ sm://x }}\n", "{{", "}}{{ssm:///p | trim | json}}", "{{ resolve:ssm:/a:1 }}\n{{ sm://a#/b/0 }}", "x{{ SNTL }}y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		if len(data) > 4096 {
			return
		}
		opts := deliveryOpts()
		opts.Templates = []TemplateFile{{Name: "t", Dest: "d", Data: []byte(data)}}
		tm, err := Parse(nil, opts)
		if err != nil {
			quotesRefs := strings.Contains(data, "://") || strings.Contains(data, "arn:") || strings.Contains(data, "resolve:")
			if !quotesRefs && strings.Contains(err.Error(), "SNTL") {
				t.Fatalf("an error quotes the text: %v", err)
			}
			return
		}
		if _, err := tm.Render(NewValues()); err == nil && len(tm.Fetches()) > 0 {
			t.Fatal("rendered without its values")
		}
	})
}
