// Package check is the report of `rolesenv check`: the checks that need
// more than the packages rolesenv is built on already do, and the rows,
// statuses, text table and JSON document they end up in.
//
// A check is a Row: what was checked, a Status (ok, warn, fail or not
// run) and a one-line detail, with optional fields that say where a
// template problem is (file, line, variable, reference), what a reference
// resolved to (a short version id), and for an AWS failure the error code
// and, for a denial, the IAM action, the resource and the policy Statement
// that would allow the call. Rows come in three groups, shown in this
// order: local (files, settings, certificates, the command), credentials,
// and one row per reference of a variable. A Report collects rows, counts
// them (Summary) and writes them as a table (WriteText) or as JSON
// (WriteJSON: {"checks": [...], "summary": {...}} with the Row and Summary
// field names, which are stable).
//
// The checks here:
//
//   - Identity: the Roles Anywhere certificate and key files, each on its
//     own (the signer's loader stops at the first failure; the files it did
//     not reach are read alone), then whether the key matches, the validity
//     dates (a warning under signer.ExpiryWarning), the certificate's usage,
//     the key file's permissions, the intermediates' dates and order and,
//     given the trust anchor's CA, the chain up to it. It says whether
//     CreateSession can be tried at all (blocked).
//   - Fetch and Resolved: one row per variable and reference (inject's
//     Template.Uses), from a resolution done as run does it (inject's
//     resolver), ok with the version or failed with the error; a JSON key
//     that is missing fails its variable's row even though its secret was
//     fetched.
//   - Describe: the same rows from metadata alone (DescribeSecret,
//     DescribeParameters and, for a pinned version without a stage,
//     ListSecretVersionIds). What needs the value cannot be verified that
//     way (a JSON key or pointer, a filter, a parameter label): those rows
//     are ok with a note, not warnings, so that a healthy setup checked
//     with --describe-only is all ok and a warning always asks for action.
//   - Command: that the command resolves to an executable by the rules run
//     uses, and that exec can take the environment.
//
// # What it does not do
//
// It does not load AWS configuration, build credentials or read flags:
// package main does, and hands in an aws.Config, a resolver and files.
// It does not exit or log.
//
// # Security properties
//
// A row never holds a value, a key, a passphrase or credentials: rows are
// built from file names, references, version ids, certificate subjects
// and serial numbers, and AWS error codes and messages (which name
// principals, actions and resources). Values fetched for a check stay in
// inject.Values, which prints "[redacted]", and are dropped with it. Every
// text field is reduced to one line without control characters before
// it is written, so a file name or an AWS message cannot rewrite the
// terminal.
package check
