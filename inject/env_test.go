package inject

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

// TestRedacted proves that every generic way of printing a type that
// holds values prints "[redacted]" and never the value.
func TestRedacted(t *testing.T) {
	const secret = "SNTL-value"
	tm, err := Parse([]File{{Name: "a.env", Data: []byte("LIT=SNTL-literal\nS=sm://x\n")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	vals := NewValues()
	vals.set(tm.Fetches()[0], &fetched{val: secret, ver: Version{VersionID: "v1"}})
	env, err := tm.Render(vals)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := env.Lookup("S")
	if v.Reveal() != secret || !v.Sensitive() {
		t.Fatalf("value %q, sensitive %v", v.Reveal(), v.Sensitive())
	}
	lit, _ := env.Lookup("LIT")
	if lit.Sensitive() {
		t.Error("a literal is sensitive")
	}
	setting := NewSetting("T", secret, true)
	things := map[string]any{
		"Env": *env, "*Env": env, "Value": v, "*Value": &v, "Values": *vals, "*Values": vals,
		"Template": *tm, "*Template": tm, "Setting": setting,
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v", "%10.3s", "%-8v", "%U", "%t", "%p", "%e"}
	for name, x := range things {
		for _, verb := range verbs {
			for _, wrapped := range []any{x, []any{x}, map[string]any{"k": x}, struct{ X any }{x}} {
				if out := fmt.Sprintf(verb, wrapped); strings.Contains(out, "SNTL") {
					t.Errorf("%s with %s prints %q", name, verb, out)
				}
			}
		}
		if out := fmt.Sprint(x); out != redactedText {
			t.Errorf("%s prints %q", name, out)
		}
		if out, err := json.Marshal(x); err != nil || string(out) != `"[redacted]"` {
			t.Errorf("%s as JSON: %s %v", name, out, err)
		}
		if out, err := json.Marshal(struct{ X any }{x}); err != nil || strings.Contains(string(out), "SNTL") {
			t.Errorf("%s inside JSON: %s %v", name, out, err)
		}
		if m, ok := x.(interface{ MarshalText() ([]byte, error) }); !ok {
			t.Errorf("%s has no MarshalText", name)
		} else if out, _ := m.MarshalText(); string(out) != redactedText {
			t.Errorf("%s as text: %s", name, out)
		}
		if out, err := xml.Marshal(struct{ X any }{x}); err == nil && strings.Contains(string(out), "SNTL") {
			t.Errorf("%s as XML: %s", name, out)
		}
		var b bytes.Buffer
		for _, h := range []slog.Handler{slog.NewTextHandler(&b, nil), slog.NewJSONHandler(&b, nil)} {
			slog.New(h).Info("msg", "x", x, slog.Any("y", x), slog.Group("g", "z", x))
		}
		if strings.Contains(b.String(), "SNTL") {
			t.Errorf("%s in a log line: %s", name, b.String())
		}
	}
	// Errors name the reference, never the value.
	vals.set(tm.Fetches()[0], &fetched{val: secret + "\x00"})
	if _, err := tm.Render(vals); err == nil || strings.Contains(err.Error(), "SNTL") || fmt.Sprintf("%+v %#v", err, err) == "" {
		t.Errorf("NUL error: %v", err)
	}
}

func TestEnvCompare(t *testing.T) {
	tm, err := Parse([]File{{Name: "a.env", Data: []byte("A=sm://x#a\nB=sm://x#b\nC=lit\n")}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	render := func(doc string) *Env {
		vals := NewValues()
		vals.set(tm.Fetches()[0], &fetched{val: doc})
		env, err := tm.Render(vals)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	e1 := render(`{"a":"1","b":"2","unused":"x"}`)
	e2 := render(`{"a":"1","b":"2","unused":"rotated"}`)
	e3 := render(`{"a":"1","b":"3"}`)
	if !e1.Equal(e2) {
		t.Error("a rotated key that no variable uses changed the environment")
	}
	if e1.Equal(e3) {
		t.Error("a changed value left the environment equal")
	}
	if got := e1.Changed(e3); !reflect.DeepEqual(got, []string{"B"}) {
		t.Errorf("Changed = %q", got)
	}
	other, _ := Parse([]File{{Name: "a.env", Data: []byte("A=1\nD=4\n")}}, Options{})
	e4, _ := other.Render(NewValues())
	if got := e4.Changed(e1); !reflect.DeepEqual(got, []string{"B", "C", "D"}) {
		t.Errorf("Changed = %q", got)
	}
	if want := []string{"A=1", "B=2", "C=lit"}; !reflect.DeepEqual(e1.Environ(), want) {
		t.Errorf("Environ = %q", e1.Environ())
	}
	// Re-rendering from new values does not parse again, and the
	// template is unchanged by rendering.
	if got := render(`{"a":"9","b":"2"}`).Environ()[0]; got != "A=9" {
		t.Errorf("re-render: %q", got)
	}
}

func TestValues(t *testing.T) {
	f1 := Fetch{Service: SecretsManager, ID: "a", Stage: currentStage}
	f2 := Fetch{Service: ParameterStore, ID: "/p", Version: 3}
	v := NewValues()
	v.set(f1, &fetched{val: "x", ver: Version{ARN: "arn:a", VersionID: "v1", Stages: []string{"AWSCURRENT"}}})
	v.set(f2, &fetched{err: &fetchError{action: "ssm:GetParameters", resource: "/p:3", class: classConfig, code: "ParameterNotFound"}})
	if ver, ok := v.Version(f1); !ok || ver.VersionID != "v1" {
		t.Errorf("Version(f1) = %v, %v", ver, ok)
	}
	if _, ok := v.Version(f2); ok {
		t.Error("a failed fetch has a version")
	}
	if err := v.Err(f2); err == nil || !strings.Contains(err.Error(), "ParameterNotFound") {
		t.Errorf("Err(f2) = %v", err)
	}
	c := v.Clone()
	c.set(f1, &fetched{val: "y"})
	if v.m[f1].val != "x" {
		t.Error("Clone shares its map")
	}
	v.Merge(c)
	if v.m[f1].val != "y" || len(v.Fetches()) != 2 {
		t.Error("Merge")
	}
	if !f2.Pinned() || f1.Pinned() || !(Fetch{Service: SecretsManager, VersionID: "v"}).Pinned() {
		t.Error("Pinned")
	}
}

func TestResolveErrorClasses(t *testing.T) {
	for _, c := range []struct {
		class                       class
		config, denied, unavailable bool
	}{
		{classConfig, true, false, false},
		{classDenied, false, true, false},
		{classUnavailable, false, false, true},
		{classOther, false, false, false},
	} {
		e := &ResolveError{File: "a.env", Line: 3, Var: "X", Ref: "sm://x", Err: errors.New("boom"), class: c.class}
		if e.Config() != c.config || e.AccessDenied() != c.denied || e.Unavailable() != c.unavailable {
			t.Errorf("class %d: %v %v %v", c.class, e.Config(), e.AccessDenied(), e.Unavailable())
		}
		if e.Error() != "a.env:3: X: sm://x: boom" {
			t.Errorf("Error() = %q", e.Error())
		}
	}
	var es Errors
	err := join([]error{configErr("b.env", 1, "", "", "b1"), configErr("a.env", 9, "", "", "a9"), configErr("a.env", 2, "", "", "a2")})
	if !errors.As(err, &es) || err.Error() != "a.env:2: a2\na.env:9: a9\nb.env:1: b1" {
		t.Errorf("join: %v", err)
	}
}
