package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
)

// Status is the outcome of one check.
type Status int

// The statuses, from best to worst; NotRun is a check that an earlier
// failure (or a missing setting) made impossible, which is not a failure
// in itself.
const (
	OK Status = iota
	Warn
	Fail
	NotRun
)

var statusText = [...]string{OK: "ok", Warn: "warn", Fail: "fail", NotRun: "not run"}
var statusJSON = [...]string{OK: "ok", Warn: "warn", Fail: "fail", NotRun: "not_run"}

// String is the status as the text table shows it: ok, warn, fail, not run.
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusText) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusText[s]
}

// MarshalText is the status as JSON shows it: ok, warn, fail, not_run.
func (s Status) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(statusJSON) {
		return nil, fmt.Errorf("check: unknown status %d", int(s))
	}
	return []byte(statusJSON[s]), nil
}

// UnmarshalText reads what MarshalText writes.
func (s *Status) UnmarshalText(b []byte) error {
	for i, t := range statusJSON {
		if string(b) == t {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("check: unknown status %q", b)
}

// Group is the stage a check belongs to. Rows are shown group by group,
// in this order, whatever order they were added in.
type Group string

const (
	Local       Group = "local"       // files, settings, certificates, the command: no network
	Credentials Group = "credentials" // AWS configuration and credentials
	Reference   Group = "reference"   // one row per reference of a variable
)

var groupOrder = map[Group]int{Local: 0, Credentials: 1, Reference: 2}

// Row is one check. Every field but Check, Status and Detail is optional.
// The JSON names are part of rolesenv's interface: they are documented in
// the README and never renamed.
type Row struct {
	Group  Group  `json:"group"`
	Check  string `json:"check"`  // what was checked, e.g. "certificate validity"
	Status Status `json:"status"` // ok, warn, fail or not_run
	Detail string `json:"detail"` // one line: what was found, or why it failed or did not run
	Hint   string `json:"hint,omitempty"`

	// Where a template problem is: the env file, the line of the
	// variable's key, the variable and the reference as written.
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Variable  string `json:"variable,omitempty"`
	Reference string `json:"reference,omitempty"`

	// Version is what a reference resolved to: a short secret version id
	// or a parameter version number. Never a value.
	Version string `json:"version,omitempty"`
	// Note qualifies an ok row: what this check could not verify.
	Note string `json:"note,omitempty"`

	// An AWS failure: the error code, and for a denial the IAM action,
	// the resource and the policy statement that would allow it.
	Code      string     `json:"code,omitempty"`
	Action    string     `json:"action,omitempty"`
	Resource  string     `json:"resource,omitempty"`
	Statement *Statement `json:"statement,omitempty"`
}

// Report is every row of one check run.
type Report struct {
	rows []Row
}

// Add appends rows.
func (r *Report) Add(rows ...Row) { r.rows = append(r.rows, rows...) }

// Rows returns the rows group by group (local, credentials, references),
// each group in the order its rows were added.
func (r *Report) Rows() []Row {
	out := slices.Clone(r.rows)
	slices.SortStableFunc(out, func(a, b Row) int { return groupOrder[a.Group] - groupOrder[b.Group] })
	return out
}

// Summary counts the rows by status.
type Summary struct {
	OK       int `json:"ok"`
	Warn     int `json:"warn"`
	Fail     int `json:"fail"`
	NotRun   int `json:"not_run"`
	ExitCode int `json:"exit_code"` // 0 when nothing failed, 1 otherwise
}

// Summary counts the rows.
func (r *Report) Summary() Summary {
	var s Summary
	for _, row := range r.rows {
		switch row.Status {
		case OK:
			s.OK++
		case Warn:
			s.Warn++
		case Fail:
			s.Fail++
		case NotRun:
			s.NotRun++
		}
	}
	if s.Fail > 0 {
		s.ExitCode = 1
	}
	return s
}

// Failed reports whether any check failed (warnings do not count).
func (r *Report) Failed() bool { return r.Summary().Fail > 0 }

// WriteJSON writes {"checks": [rows...], "summary": {...}}, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	rows := r.Rows()
	for i := range rows {
		rows[i] = clean(rows[i])
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Checks  []Row   `json:"checks"`
		Summary Summary `json:"summary"`
	}{Checks: rows, Summary: r.Summary()})
}

// maxCheckWidth caps the CHECK column: a longer name pushes its own
// detail right instead of widening every line.
const maxCheckWidth = 44

// WriteText writes an aligned table (STATUS, CHECK, DETAIL), with hints
// and policy statements on lines of their own under a row's detail, then
// a summary line.
func (r *Report) WriteText(w io.Writer) error {
	rows := r.Rows()
	width := len("CHECK")
	for _, row := range rows {
		if n := len(clean(row).Check); n > width && n <= maxCheckWidth {
			width = n
		}
	}
	var b bytes.Buffer
	line := func(status, check, detail string) {
		pad := width - len(check)
		if pad < 0 {
			pad = 0
		}
		fmt.Fprintf(&b, "%-7s  %s%s  %s", status, check, strings.Repeat(" ", pad), detail)
		b.Truncate(len(bytes.TrimRight(b.Bytes(), " ")))
		b.WriteByte('\n')
	}
	line("STATUS", "CHECK", "DETAIL")
	for _, row := range rows {
		row = clean(row)
		detail := row.Detail
		if row.Note != "" {
			detail += "; " + row.Note
		}
		line(row.Status.String(), row.Check, detail)
		if row.Hint != "" {
			line("", "", "hint: "+row.Hint)
		}
		if row.Statement != nil {
			line("", "", "allow: "+row.Statement.JSON())
		}
	}
	s := r.Summary()
	result := "ok"
	switch {
	case s.Fail > 0:
		result = "fail"
	case s.Warn > 0:
		result = "ok with warnings"
	}
	fmt.Fprintf(&b, "\nresult: %s (%d ok, %d warn, %d fail, %d not run)\n", result, s.OK, s.Warn, s.Fail, s.NotRun)
	_, err := w.Write(b.Bytes())
	return err
}

// clean keeps every text field of a row on one line and free of control
// characters: details quote file names and AWS messages, and neither may
// move the cursor of the terminal that shows them.
func clean(r Row) Row {
	for _, p := range []*string{&r.Check, &r.Detail, &r.Hint, &r.File, &r.Variable, &r.Reference,
		&r.Version, &r.Note, &r.Code, &r.Action, &r.Resource} {
		*p = oneLine(*p)
	}
	return r
}

// oneLine replaces control characters with spaces and collapses runs of
// white space.
func oneLine(s string) string {
	if s == "" {
		return s
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
