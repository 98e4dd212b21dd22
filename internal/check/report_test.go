package check

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestStatusText(t *testing.T) {
	for s, want := range map[Status][2]string{
		OK: {"ok", "ok"}, Warn: {"warn", "warn"}, Fail: {"fail", "fail"}, NotRun: {"not run", "not_run"},
	} {
		if s.String() != want[0] {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want[0])
		}
		b, err := s.MarshalText()
		if err != nil || string(b) != want[1] {
			t.Errorf("%d.MarshalText() = %q, %v; want %q", int(s), b, err, want[1])
		}
		var back Status
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("UnmarshalText(%q) = %v, %v", b, back, err)
		}
	}
	if _, err := Status(9).MarshalText(); err == nil {
		t.Error("an unknown status marshals")
	}
	var s Status
	if err := s.UnmarshalText([]byte("not run")); err == nil {
		t.Error(`"not run" is the text form, not the JSON one, and must not parse`)
	}
}

// sample has rows out of group order, a hint, a statement, a note and
// text that tries to move the terminal's cursor.
func sample() *Report {
	var r Report
	r.Add(
		Row{Group: Reference, Check: "reference A (app.env:2)", Status: Fail, Detail: "sm://x: access denied",
			File: "app.env", Line: 2, Variable: "A", Reference: "sm://x", Code: "AccessDeniedException",
			Action: "secretsmanager:GetSecretValue", Resource: "arn:aws:secretsmanager:us-east-1:1:secret:x-??????",
			Statement: Allow("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:x-??????"),
			Hint:      "add this statement"},
		Row{Group: Credentials, Check: "credentials", Status: NotRun, Detail: "a failure\nwith \x1b[2Ja newline"},
		Row{Group: Local, Check: "certificate validity", Status: Warn, Detail: "expires in 2 days"},
		Row{Group: Local, Check: "a check with a rather long name that pushes its detail", Status: OK, Detail: "fine", Note: "not everything"},
	)
	return &r
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `STATUS   CHECK                    DETAIL
warn     certificate validity     expires in 2 days
ok       a check with a rather long name that pushes its detail  fine; not everything
not run  credentials              a failure with [2Ja newline
fail     reference A (app.env:2)  sm://x: access denied
                                  hint: add this statement
                                  allow: {"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:1:secret:x-??????"}

result: fail (1 ok, 1 warn, 1 fail, 1 not run)
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	var ok Report
	ok.Add(Row{Group: Local, Check: "x", Status: Warn, Detail: "y"}, Row{Group: Local, Check: "z", Status: NotRun})
	b.Reset()
	if err := ok.WriteText(&b); err != nil || !strings.HasSuffix(b.String(), "result: ok with warnings (0 ok, 1 warn, 0 fail, 1 not run)\n") || ok.Failed() {
		t.Errorf("warnings and not run fail nothing:\n%s", b.String())
	}
}

// TestWriteJSON checks the documented fields: their names, their types
// and that empty optional ones are left out.
func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Checks  []map[string]any `json:"checks"`
		Summary map[string]any   `json:"summary"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	if len(doc.Checks) != 4 {
		t.Fatalf("%d checks", len(doc.Checks))
	}
	for _, c := range doc.Checks {
		for _, k := range []string{"group", "check", "status", "detail"} {
			if _, ok := c[k].(string); !ok {
				t.Errorf("row %v lacks the string field %q", c, k)
			}
		}
	}
	denied := doc.Checks[3]
	want := map[string]any{
		"group": "reference", "check": "reference A (app.env:2)", "status": "fail", "detail": "sm://x: access denied",
		"hint": "add this statement", "file": "app.env", "line": 2.0, "variable": "A", "reference": "sm://x",
		"code": "AccessDeniedException", "action": "secretsmanager:GetSecretValue",
		"resource": "arn:aws:secretsmanager:us-east-1:1:secret:x-??????",
		"statement": map[string]any{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
			"Resource": "arn:aws:secretsmanager:us-east-1:1:secret:x-??????"},
	}
	if got, _ := json.Marshal(denied); string(got) != string(mustJSON(t, want)) {
		t.Errorf("denied row:\n%s\nwant\n%s", got, mustJSON(t, want))
	}
	if nr := doc.Checks[2]; nr["status"] != "not_run" || nr["detail"] != "a failure with [2Ja newline" || len(nr) != 4 {
		t.Errorf("not run row %v: want 4 fields, a cleaned detail", nr)
	}
	if got, _ := json.Marshal(doc.Summary); string(got) != `{"exit_code":1,"fail":1,"not_run":1,"ok":1,"warn":1}` {
		t.Errorf("summary %s", got)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
