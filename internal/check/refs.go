package check

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rolesenv/rolesenv/inject"
)

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	var es inject.Errors
	if errors.As(err, &es) {
		return es
	}
	return []error{err}
}

// where is a use's place for a row's name: "DB_URL (app.env:3)".
func where(u inject.Use) string {
	loc := u.File
	if u.Line > 0 {
		loc += ":" + strconv.Itoa(u.Line)
	}
	if loc == "" {
		return u.Var
	}
	return u.Var + " (" + loc + ")"
}

// useRow is a row about u; its detail starts with the reference as
// written, so that the rows of a variable with several references tell
// apart.
func useRow(u inject.Use, status Status, detail string) Row {
	return Row{Group: Reference, Check: "reference " + where(u), Status: status, Detail: u.Text + ": " + detail,
		File: u.File, Line: u.Line, Variable: u.Var, Reference: u.Text}
}

// Skipped is a "not run" row for every use, with the reason.
func Skipped(uses []inject.Use, reason string) []Row {
	rows := make([]Row, 0, len(uses))
	for _, u := range uses {
		rows = append(rows, useRow(u, NotRun, reason))
	}
	return rows
}

// Fetch fetches every distinct reference the way run does (inject's
// resolver), then pins down denials that a batch spread: Parameter
// Store denies a whole GetParameters call when one of its names is
// denied, so each parameter denied in a call with others is asked again
// alone, and only the ones really denied are reported as such.
func Fetch(ctx context.Context, r *inject.Resolver, fetches []inject.Fetch) *inject.Values {
	vals := r.Fetch(ctx, fetches)
	var denied []inject.Fetch
	for _, f := range fetches {
		if f.Service != inject.ParameterStore {
			continue
		}
		if err := vals.Err(f); err != nil && describe(err).denied {
			denied = append(denied, f)
		}
	}
	if len(denied) < 2 {
		return vals
	}
	for _, f := range denied {
		vals.Merge(r.Fetch(ctx, []inject.Fetch{f}))
	}
	return vals
}

// Resolved turns what Fetch returned into one row per use: ok with the
// version it resolved to (never the value), or the failure with its AWS
// error code, and for a denial the statement that would allow it. The
// template's rendering decides, so a missing JSON key or a filter that
// fails is reported on its variable even though its fetch succeeded.
func Resolved(tm *inject.Template, uses []inject.Use, vals *inject.Values, p Principal) []Row {
	_, err := tm.Render(vals)
	failed := map[string][]*inject.ResolveError{}
	for _, e := range flatten(err) {
		var re *inject.ResolveError
		if errors.As(e, &re) {
			k := useKey(re.File, re.Line, re.Var, re.Ref)
			failed[k] = append(failed[k], re)
		}
	}
	rows := make([]Row, 0, len(uses))
	for _, u := range uses {
		k := useKey(u.File, u.Line, u.Var, u.Text)
		if errs := failed[k]; len(errs) > 0 {
			failed[k] = errs[1:]
			rows = append(rows, failedUse(u, errs[0], p))
			continue
		}
		detail, version := "resolved", ""
		if v, ok := vals.Version(u.Ref.Fetch); ok {
			version, detail = versionOf(u.Ref.Fetch, v)
		}
		r := useRow(u, OK, detail)
		r.Version = version
		rows = append(rows, r)
	}
	return rows
}

func useKey(file string, line int, name, text string) string {
	return file + "\x00" + strconv.Itoa(line) + "\x00" + name + "\x00" + text
}

// versionOf describes what a fetch resolved to.
func versionOf(f inject.Fetch, v inject.Version) (version, detail string) {
	if f.Service == inject.ParameterStore {
		version = strconv.FormatInt(v.Version, 10)
		return version, "version " + version
	}
	version = shortID(v.VersionID)
	detail = "version " + version
	if len(v.Stages) > 0 {
		detail += " (" + strings.Join(v.Stages, ", ") + ")"
	}
	return version, detail
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// A row whose call the check's deadline cut short says so, with
// DeadlineHint.
const (
	deadlineDetail = "no answer before the check's deadline (--timeout)"
	DeadlineHint   = "raise --timeout, or find what slows AWS down (--log-level debug shows every call)"
)

// failedUse is the row of a use that could not be rendered.
func failedUse(u inject.Use, re *inject.ResolveError, p Principal) Row {
	r := useRow(u, Fail, re.Err.Error())
	r.Code = re.Code
	if errors.Is(re, context.DeadlineExceeded) {
		r.Detail += " (" + deadlineDetail + ")"
		r.Hint = DeadlineHint
	}
	fl := describe(re)
	if !fl.denied {
		if fl.notFound {
			r.Hint = notFoundHint(u.Ref.Fetch)
		}
		return r
	}
	action := "secretsmanager:GetSecretValue"
	if u.Ref.Service == inject.ParameterStore {
		action = "ssm:GetParameters"
	}
	denial(&r, fl, action, resourceARN(u.Ref.Fetch, p), p)
	r.Detail = u.Text + ": " + deniedDetail(r)
	return r
}

func deniedDetail(r Row) string {
	d := "access denied: " + r.Action + " on " + r.Resource
	if r.Code != "" {
		d += " (" + r.Code + ")"
	}
	return d
}

func notFoundHint(f inject.Fetch) string {
	switch {
	case f.Service == inject.ParameterStore && (f.Version != 0 || f.Label != ""):
		return "check the parameter's name and that the version or label exists, in this region"
	case f.Service == inject.ParameterStore:
		return "check the parameter's name (a name with / starts with /) and the region"
	case f.VersionID != "" || f.Stage != "AWSCURRENT":
		return "check the secret's name, the pinned stage or version, and the region"
	}
	return "check the secret's name and the region"
}

// unverified is what a describe-only check cannot verify of a use
// without reading the value, for the note of its row; "" when nothing.
func unverified(u inject.Use) string {
	var parts []string
	switch {
	case u.Ref.Key != "":
		parts = append(parts, fmt.Sprintf("key %q", u.Ref.Key))
	case u.Ref.Pointer != "":
		parts = append(parts, fmt.Sprintf("JSON pointer %q", u.Ref.Pointer))
	}
	if len(u.Filters) > 0 {
		parts = append(parts, "filter"+plural(len(u.Filters))+" "+strings.Join(u.Filters, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " and ") + " not verified: --describe-only reads no value"
}
