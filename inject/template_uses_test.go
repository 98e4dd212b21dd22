package inject

import (
	"errors"
	"reflect"
	"testing"
)

// parseEnv parses env files called a.env, b.env, ... in order.
func parseEnv(t *testing.T, opts Options, data ...string) *Template {
	t.Helper()
	fs := make([]File, len(data))
	for i, d := range data {
		fs[i] = File{Name: string(rune('a'+i)) + ".env", Data: []byte(d)}
	}
	tm, err := Parse(fs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestUses(t *testing.T) {
	tm := parseEnv(t, Options{Environ: []string{"INHERITED=ssm:///from/env", "REGION=eu-west-1", "DROPPED=sm://dropped"}, FromEnv: true, Remove: []string{"DROPPED"}},
		"A=sm://prod/db#user\n"+
			"URL=x://{{ sm://prod/db#user }}:{{sm://prod/db#pw|urlquery|trim}}@h\n"+
			"LITERAL='sm://not/a/ref'\n"+
			"GONE=sm://overridden\n"+
			"CFN={{resolve:ssm:/cfn/p:3}}\n"+
			"PLACE=sm://in-${REGION}\n"+
			"HIDDEN=sm://hidden\n"+
			"SHOWN=\"${HIDDEN}/${HIDDEN}\"\n",
		"GONE=plain\nHIDDEN=plain\n")
	want := []Use{
		{File: "a.env", Line: 1, Var: "A", Text: "sm://prod/db#user", Ref: mustRef(t, "sm://prod/db#user")},
		{File: "a.env", Line: 2, Var: "URL", Text: "{{ sm://prod/db#user }}", Ref: mustRef(t, "sm://prod/db#user")},
		{File: "a.env", Line: 2, Var: "URL", Text: "{{sm://prod/db#pw|urlquery|trim}}", Ref: mustRef(t, "sm://prod/db#pw"), Filters: []string{"urlquery", "trim"}},
		{File: "a.env", Line: 5, Var: "CFN", Text: "{{resolve:ssm:/cfn/p:3}}", Ref: mustRef(t, "resolve:ssm:/cfn/p:3")},
		{File: "a.env", Line: 6, Var: "PLACE", Text: "sm://in-eu-west-1", Ref: mustRef(t, "sm://in-eu-west-1")},
		// HIDDEN is overridden, but SHOWN still expands its first
		// definition: its reference is needed, once.
		{File: "a.env", Line: 7, Var: "HIDDEN", Text: "sm://hidden", Ref: mustRef(t, "sm://hidden")},
		{File: "environment", Var: "INHERITED", Text: "ssm:///from/env", Ref: mustRef(t, "ssm:///from/env")},
	}
	got := tm.Uses()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Uses:\n got %+v\nwant %+v", got, want)
	}
	if tm.References() != len(got) {
		t.Errorf("References() = %d, Uses has %d", tm.References(), len(got))
	}
	if got[2].Ref.Key != "pw" || got[3].Ref.Service != ParameterStore || got[3].Ref.Version != 3 {
		t.Errorf("parsed references %+v, %+v", got[2].Ref, got[3].Ref)
	}

	got[2].Filters[0] = "changed"
	got[0].Var = "changed"
	if again := tm.Uses(); again[2].Filters[0] != "urlquery" || again[0].Var != "A" {
		t.Error("changing what Uses returned changed the template")
	}
}

// TestUsesLineUpWithRenderErrors: with nothing fetched, Render fails on
// every use, in the same order and with the same place and text.
func TestUsesLineUpWithRenderErrors(t *testing.T) {
	tm := parseEnv(t, Options{Environ: []string{"Z=sm://z"}, FromEnv: true},
		"B=sm://b\nA={{ sm://a1 }}-{{ ssm:///a2 | trim }}\nC=\"${B}\"\n",
		"A=sm://late\nD=x-${C}-{{sm://d}}\n",
		"E=ssm:///e\n")
	_, err := tm.Render(NewValues())
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Render with nothing fetched: %v", err)
	}
	uses := tm.Uses()
	if len(es) != len(uses) {
		t.Fatalf("%d errors, %d uses", len(es), len(uses))
	}
	for i, e := range es {
		var re *ResolveError
		if !errors.As(e, &re) {
			t.Fatalf("error %d: %v", i, e)
		}
		u := uses[i]
		if re.File != u.File || re.Line != u.Line || re.Var != u.Var || re.Ref != u.Text {
			t.Errorf("use %d is %s:%d %s %s, its error %s:%d %s %s", i, u.File, u.Line, u.Var, u.Text, re.File, re.Line, re.Var, re.Ref)
		}
	}
}

func TestUsesNone(t *testing.T) {
	tm := parseEnv(t, Options{Environ: []string{"X=sm://not-with-from-env"}}, "A=1\nB='sm://quoted'\n")
	if u := tm.Uses(); len(u) != 0 {
		t.Errorf("Uses of a template without references: %+v", u)
	}
}
