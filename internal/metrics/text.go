package metrics

import (
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Names of the metrics, as README.md lists them. check --format json uses
// the same words for the same facts: a credentials row's source, an
// action that is service:operation, a reference row's code.
const (
	NameBuildInfo      = "rolesenv_build_info"
	NameStartTime      = "rolesenv_start_time_seconds"
	NameCredExpiry     = "rolesenv_credentials_expiry_timestamp_seconds"
	NameLastCheckOK    = "rolesenv_check_last_success_timestamp_seconds"
	NameLastCheck      = "rolesenv_check_last_timestamp_seconds"
	NameFailedChecks   = "rolesenv_check_consecutive_failures"
	NameChecks         = "rolesenv_checks_total"
	NameEnvAge         = "rolesenv_environment_oldest_value_age_seconds"
	NameRotations      = "rolesenv_rotations_total"
	NameCommandUp      = "rolesenv_command_up"
	NameCommandStart   = "rolesenv_command_start_time_seconds"
	NameCommandExits   = "rolesenv_command_exits_total"
	NameRestarts       = "rolesenv_command_restarts_total"
	NameReloads        = "rolesenv_command_reloads_total"
	NameAPICalls       = "rolesenv_aws_api_calls_total"
	NameAPIDuration    = "rolesenv_aws_api_call_duration_seconds"
	NameLoopLastTurn   = "rolesenv_loop_last_turn_timestamp_seconds"
	NameReady          = "rolesenv_ready"
	NameReadyThreshold = "rolesenv_ready_max_age_seconds"
)

// Snapshot is every metric's value at one moment, read from the State's
// atomics one by one: consistent per series, not across series.
type Snapshot struct {
	Families []Family
}

// Family is one metric: its name, help text, type (gauge, counter or
// histogram) and series.
type Family struct {
	Name, Help, Type string
	Series           []Series
}

// Series is one label combination's value; a histogram's has Buckets
// (cumulative counts by upper bound, +Inf left out), Count and Sum.
type Series struct {
	Labels  []Label
	Value   float64
	Buckets []Bucket
	Count   uint64
	Sum     float64
}

// Label is a label's name and value.
type Label struct{ Name, Value string }

// Bucket is a histogram bucket: the observations no larger than
// UpperBound (seconds).
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// Snapshot reads every metric now.
func (s *State) Snapshot() Snapshot {
	now := s.now()
	var b snapshotBuilder
	b.one(NameBuildInfo, "gauge", "Always 1; the labels say which rolesenv runs.", 1, "version", s.version, "goversion", runtime.Version())
	b.one(NameStartTime, "gauge", "When rolesenv started, in seconds since the Unix epoch.", unixSeconds(s.start.UnixNano()))
	if cs := s.credSource.Load(); cs != nil {
		b.one(NameCredExpiry, "gauge", "When the credentials rolesenv holds expire, in seconds since the Unix epoch; 0 when they do not.",
			unixSeconds(s.credExpiry.Load()), "source", cs.source, "provider", cs.provider)
	}
	b.one(NameLastCheck, "gauge", "When the last check for rotation ended, successful or not, in seconds since the Unix epoch; 0 before the first.", unixSeconds(s.lastCheck.Load()))
	b.one(NameLastCheckOK, "gauge", "When the last successful check for rotation ended, in seconds since the Unix epoch; 0 before the first.", unixSeconds(s.lastCheckOK.Load()))
	b.one(NameFailedChecks, "gauge", "Checks for rotation that failed in a row; 0 after a successful one.", float64(s.failedChecks.Load()))
	b.counters(NameChecks, "Checks for rotation, by outcome (ok, failed).", s.checks, "outcome")
	b.one(NameEnvAge, "gauge", "How long ago the oldest value in the command's environment was last confirmed current, in seconds.", s.envAge(now).Seconds())
	b.one(NameRotations, "counter", "References whose rotation a check detected.", float64(s.rotations.Load()))

	b.one(NameCommandUp, "gauge", "1 while the command runs, 0 otherwise.", b2f(s.commandUp.Load()))
	b.one(NameCommandStart, "gauge", "When the running command (or the last one) started, in seconds since the Unix epoch; 0 before the first.", unixSeconds(s.commandStart.Load()))
	b.counters(NameCommandExits, "Times the command ended, by how (exited, signaled).", s.commandExits, "how")
	b.counters(NameRestarts, "Restarts of the command, by reason (change) and outcome (ok, failed, deferred).", s.restarts, "reason", "outcome")
	b.counters(NameReloads, "Reloads of the command (a signal instead of a restart), by reason and outcome.", s.reloads, "reason", "outcome")

	b.counters(NameAPICalls, "AWS API requests, each attempt counted, by service, operation and outcome (ok, throttled, denied, error).", s.apiCalls, "service", "operation", "outcome")
	b.histograms(NameAPIDuration, "Duration of AWS API requests, each attempt apart, by service and operation.", s.apiLatency, "service", "operation")

	b.one(NameLoopLastTurn, "gauge", "When the supervisor's loop last turned, in seconds since the Unix epoch; 0 before it runs.", unixSeconds(s.loopBeat.Load()))
	ready, _ := s.Ready(now)
	b.one(NameReady, "gauge", "1 when /readyz answers ready: the command runs on an environment no older than the threshold.", b2f(ready))
	b.one(NameReadyThreshold, "gauge", "How old the environment may be for /readyz to answer ready, in seconds.", time.Duration(s.readyAfter.Load()).Seconds())
	return Snapshot{Families: b.fams}
}

type snapshotBuilder struct{ fams []Family }

func (b *snapshotBuilder) one(name, typ, help string, v float64, labels ...string) {
	sr := Series{Value: v}
	for i := 0; i+1 < len(labels); i += 2 {
		sr.Labels = append(sr.Labels, Label{labels[i], labels[i+1]})
	}
	b.fams = append(b.fams, Family{Name: name, Help: help, Type: typ, Series: []Series{sr}})
}

func (b *snapshotBuilder) counters(name, help string, f *family, names ...string) {
	fam := Family{Name: name, Help: help, Type: "counter"}
	for _, s := range f.sorted() {
		fam.Series = append(fam.Series, Series{Labels: labelsOf(names, s.values), Value: float64(s.count.Load())})
	}
	b.fams = append(b.fams, fam)
}

func (b *snapshotBuilder) histograms(name, help string, f *family, names ...string) {
	fam := Family{Name: name, Help: help, Type: "histogram"}
	for _, s := range f.sorted() {
		count := uint64(s.count.Load()) // first: the buckets may only be ahead of it
		sr := Series{Labels: labelsOf(names, s.values), Count: count, Sum: time.Duration(s.sum.Load()).Seconds()}
		var cum uint64
		for i, le := range latencyBuckets {
			cum += uint64(s.bucket[i].Load())
			sr.Buckets = append(sr.Buckets, Bucket{UpperBound: le.Seconds(), Count: min(cum, count)})
		}
		fam.Series = append(fam.Series, sr)
	}
	b.fams = append(b.fams, fam)
}

func labelsOf(names, values []string) []Label {
	out := make([]Label, len(names))
	for i, n := range names {
		out[i] = Label{n, values[i]}
	}
	return out
}

// WriteText writes every metric in the Prometheus text exposition format
// (version 0.0.4).
func (s *State) WriteText(w io.Writer) error {
	_, err := io.WriteString(w, s.Snapshot().Text())
	return err
}

// Text is the snapshot in the Prometheus text exposition format.
func (sn Snapshot) Text() string {
	var b strings.Builder
	for _, f := range sn.Families {
		b.WriteString("# HELP " + f.Name + " " + f.Help + "\n# TYPE " + f.Name + " " + f.Type + "\n")
		for _, sr := range f.Series {
			if f.Type != "histogram" {
				sample(&b, f.Name, sr.Labels, sr.Value)
				continue
			}
			for _, bk := range sr.Buckets {
				sample(&b, f.Name+"_bucket", append(sr.Labels, Label{"le", formatFloat(bk.UpperBound)}), float64(bk.Count))
			}
			sample(&b, f.Name+"_bucket", append(sr.Labels, Label{"le", "+Inf"}), float64(sr.Count))
			sample(&b, f.Name+"_sum", sr.Labels, sr.Sum)
			sample(&b, f.Name+"_count", sr.Labels, float64(sr.Count))
		}
	}
	return b.String()
}

func sample(b *strings.Builder, name string, labels []Label, v float64) {
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.Name + `="` + escapeLabel(l.Value) + `"`)
		}
		b.WriteByte('}')
	}
	b.WriteString(" " + formatFloat(v) + "\n")
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// envAge is how long ago the command's values were last confirmed
// current: the last successful check, or, while a new environment has
// not reached the command, when it was sent, if earlier. With nothing to
// poll, only a change not yet applied ages the environment.
func (s *State) envAge(now time.Time) time.Duration {
	since := now
	if !s.static.Load() {
		since = time.Unix(0, s.confirmed.Load())
	}
	if ns := s.staleSince.Load(); ns != 0 && ns < since.UnixNano() {
		since = time.Unix(0, ns)
	}
	return max(0, now.Sub(since))
}

// sorted returns the family's series in the order of their labels.
func (f *family) sorted() []*series {
	var out []*series
	f.m.Range(func(_, v any) bool {
		out = append(out, v.(*series))
		return true
	})
	slices.SortFunc(out, func(a, b *series) int { return slices.Compare(a.values, b.values) })
	return out
}

// escapeLabel escapes a label value as the text format wants: backslash,
// double quote and line feed. (A loop, not a strings.Replacer: a
// package-level Replacer would be built at every start of rolesenv.)
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unixSeconds(ns int64) float64 {
	if ns == 0 {
		return 0
	}
	return float64(ns) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
