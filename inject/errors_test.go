package inject

import (
	"errors"
	"strings"
	"testing"
)

// A failure every fetch shares (here: no credentials) is reported once,
// with the references it left unresolved; other errors keep their lines.
func TestErrorsGroupSharedFailures(t *testing.T) {
	creds := func(resource string) error {
		return &fetchError{action: "secretsmanager:GetSecretValue", resource: resource, class: classConfig,
			msg: "failed to obtain AWS credentials: no credentials anywhere", shared: true}
	}
	es := Errors{
		&ResolveError{File: "a.env", Line: 1, Var: "A", Ref: "sm://a", Err: creds("a"), class: classConfig},
		&ResolveError{File: "a.env", Line: 2, Var: "B", Ref: "sm://b", Err: errors.New(`JSON key "k" not found`), class: classConfig},
		&ResolveError{File: "a.env", Line: 3, Var: "C", Ref: "sm://c", Err: creds("c"), class: classConfig},
		&ResolveError{File: "a.env", Line: 3, Var: "C", Ref: "sm://d", Err: creds("d"), class: classConfig},
	}
	want := strings.Join([]string{
		`a.env:2: B: sm://b: JSON key "k" not found`,
		"failed to obtain AWS credentials: no credentials anywhere",
		"3 references not resolved because of it: a.env:1 A, a.env:3 C (2)",
	}, "\n")
	if got := es.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// One alone keeps its full line.
	if got := (Errors{es[0]}).Error(); got != es[0].Error() {
		t.Errorf("a single shared failure: got %q, want %q", got, es[0].Error())
	}
}

// At most eight places are listed; the count says how many references
// there are in all.
func TestErrorsListEightPlaces(t *testing.T) {
	var es Errors
	for i := 1; i <= 10; i++ {
		fe := &fetchError{action: "secretsmanager:GetSecretValue", resource: "x", class: classConfig,
			msg: "failed to obtain AWS credentials: none", shared: true}
		es = append(es, &ResolveError{File: "a.env", Line: i, Var: "V", Ref: "sm://x", Err: fe, class: classConfig})
	}
	got := es.Error()
	want := "10 references not resolved because of it: a.env:1 V, a.env:2 V, a.env:3 V, a.env:4 V, a.env:5 V, a.env:6 V, a.env:7 V, a.env:8 V, and 2 more"
	if !strings.HasSuffix(got, "\n"+want) {
		t.Errorf("got\n%s\nwant it to end with\n%s", got, want)
	}
}
