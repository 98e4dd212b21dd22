package inject

import "testing"

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
