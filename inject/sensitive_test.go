package inject

import (
	"fmt"
	"strings"
	"testing"
)

// A value that an inherited credential variable expands into is as
// sensitive as the variable itself, through any number of expansions and
// files: render masks it.
func TestExpansionKeepsSensitivity(t *testing.T) {
	files := []File{
		{Name: "a.env", Data: []byte("KEY=${AWS_SECRET_ACCESS_KEY}\nTOKEN=\"t:$AWS_SESSION_TOKEN\"\nPLAIN=${HOME}\n")},
		{Name: "b.env", Data: []byte("AGAIN=x-${KEY}\nOTHER=${PLAIN}/y\n")},
	}
	tm, err := Parse(files, Options{CleanEnv: true, Environ: []string{"AWS_SECRET_ACCESS_KEY=SNTL1", "AWS_SESSION_TOKEN=SNTL2", "HOME=/home/app"}})
	if err != nil {
		t.Fatal(err)
	}
	env, err := tm.Render(NewValues())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"KEY": true, "TOKEN": true, "AGAIN": true, "PLAIN": false, "OTHER": false} {
		v, ok := env.Lookup(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		if v.Sensitive() != want {
			t.Errorf("%s: sensitive %v, want %v", name, v.Sensitive(), want)
		}
	}
}

// TestRenderDuplicateJSONKey: a secret whose JSON names the key a
// reference reads twice fails with the file, line, variable, reference
// and key path, and neither value; the same secret referenced whole is
// passed on unchanged.
func TestRenderDuplicateJSONKey(t *testing.T) {
	const doc = `{"user":"app","password":"SNTL-one","pass\u0077ord":"SNTL-two"}`
	tm, err := Parse([]File{{Name: "a.env", Data: []byte("WHOLE=sm://db\nPW={{ sm://db#password | urlquery }}\n")}}, Options{CleanEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	vals := NewValues()
	vals.set(tm.Fetches()[0], &fetched{val: doc})
	_, err = tm.Render(vals)
	const want = `a.env:2: PW: {{ sm://db#password | urlquery }}: the JSON names the key "/password" twice (JSON leaves which one counts undefined, and readers differ); neither is used`
	if err == nil || err.Error() != want || strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), "SNTL") {
		t.Errorf("got %v\nwant %s", err, want)
	}
	tm, err = Parse([]File{{Name: "a.env", Data: []byte("WHOLE=sm://db\n")}}, Options{CleanEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	env, err := tm.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := env.Lookup("WHOLE"); v.Reveal() != doc {
		t.Errorf("whole value changed: %q", v.Reveal())
	}
}
