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

// WriteText writes every metric in the Prometheus text exposition format
// (version 0.0.4). It reads the State's atomics one by one: a scrape is
// consistent per series, not across series.
func (s *State) WriteText(w io.Writer) error {
	var b strings.Builder
	now := s.now()
	e := &encoder{b: &b}

	e.head(NameBuildInfo, "gauge", "Always 1; the labels say which rolesenv runs.")
	e.sample(NameBuildInfo, []string{"version", s.version, "goversion", runtime.Version()}, 1)
	e.gauge(NameStartTime, "When rolesenv started, in seconds since the Unix epoch.", unixSeconds(s.start.UnixNano()))

	if cs := s.credSource.Load(); cs != nil {
		e.head(NameCredExpiry, "gauge", "When the credentials rolesenv holds expire, in seconds since the Unix epoch; 0 when they do not.")
		e.sample(NameCredExpiry, []string{"source", cs.source, "provider", cs.provider}, unixSeconds(s.credExpiry.Load()))
	}

	e.gauge(NameLastCheck, "When the last check for rotation ended, successful or not, in seconds since the Unix epoch; 0 before the first.", unixSeconds(s.lastCheck.Load()))
	e.gauge(NameLastCheckOK, "When the last successful check for rotation ended, in seconds since the Unix epoch; 0 before the first.", unixSeconds(s.lastCheckOK.Load()))
	e.gauge(NameFailedChecks, "Checks for rotation that failed in a row; 0 after a successful one.", float64(s.failedChecks.Load()))
	e.counters(NameChecks, "Checks for rotation, by outcome (ok, failed).", s.checks, "outcome")
	e.gauge(NameEnvAge, "How long ago the oldest value in the command's environment was last confirmed current, in seconds.", s.envAge(now).Seconds())
	e.counter(NameRotations, "References whose rotation a check detected.", float64(s.rotations.Load()))

	e.gauge(NameCommandUp, "1 while the command runs, 0 otherwise.", b2f(s.commandUp.Load()))
	e.gauge(NameCommandStart, "When the running command (or the last one) started, in seconds since the Unix epoch; 0 before the first.", unixSeconds(s.commandStart.Load()))
	e.counters(NameCommandExits, "Times the command ended, by how (exited, signaled).", s.commandExits, "how")
	e.counters(NameRestarts, "Restarts of the command, by reason (change) and outcome (ok, failed, deferred).", s.restarts, "reason", "outcome")
	e.counters(NameReloads, "Reloads of the command (a signal instead of a restart), by reason and outcome.", s.reloads, "reason", "outcome")

	e.counters(NameAPICalls, "AWS API requests, each attempt counted, by service, operation and outcome (ok, throttled, denied, error).", s.apiCalls, "service", "operation", "outcome")
	e.histograms(NameAPIDuration, "Duration of AWS API requests, each attempt apart, by service and operation.", s.apiLatency, "service", "operation")

	e.gauge(NameLoopLastTurn, "When the supervisor's loop last turned, in seconds since the Unix epoch; 0 before it runs.", unixSeconds(s.loopBeat.Load()))
	ready, _ := s.Ready(now)
	e.gauge(NameReady, "1 when /readyz answers ready: the command runs on an environment no older than the threshold.", b2f(ready))
	e.gauge(NameReadyThreshold, "How old the environment may be for /readyz to answer ready, in seconds.", time.Duration(s.readyAfter.Load()).Seconds())
	_, err := io.WriteString(w, b.String())
	return err
}

// envAge is how long ago the command's values were last confirmed current.
func (s *State) envAge(now time.Time) time.Duration {
	return max(0, now.Sub(time.Unix(0, s.confirmed.Load())))
}

type encoder struct{ b *strings.Builder }

func (e *encoder) head(name, typ, help string) {
	e.b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

func (e *encoder) sample(name string, labels []string, v float64) {
	e.b.WriteString(name)
	if len(labels) > 0 {
		e.b.WriteByte('{')
		for i := 0; i < len(labels); i += 2 {
			if i > 0 {
				e.b.WriteByte(',')
			}
			e.b.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
		}
		e.b.WriteByte('}')
	}
	e.b.WriteString(" " + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
}

func (e *encoder) gauge(name, help string, v float64) {
	e.head(name, "gauge", help)
	e.sample(name, nil, v)
}

func (e *encoder) counter(name, help string, v float64) {
	e.head(name, "counter", help)
	e.sample(name, nil, v)
}

func (e *encoder) counters(name, help string, f *family, names ...string) {
	e.head(name, "counter", help)
	for _, s := range f.sorted() {
		e.sample(name, labelPairs(names, s.values), float64(s.count.Load()))
	}
}

func (e *encoder) histograms(name, help string, f *family, names ...string) {
	e.head(name, "histogram", help)
	for _, s := range f.sorted() {
		labels := labelPairs(names, s.values)
		count := s.count.Load() // first: the buckets may only be ahead of it
		var cum int64
		for i, le := range latencyBuckets {
			cum += s.bucket[i].Load()
			e.sample(name+"_bucket", append(labels, "le", strconv.FormatFloat(le.Seconds(), 'g', -1, 64)), float64(min(cum, count)))
		}
		e.sample(name+"_bucket", append(labels, "le", "+Inf"), float64(count))
		e.sample(name+"_sum", labels, time.Duration(s.sum.Load()).Seconds())
		e.sample(name+"_count", labels, float64(count))
	}
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

func labelPairs(names, values []string) []string {
	out := make([]string, 0, 2*len(names)+2)
	for i, n := range names {
		out = append(out, n, values[i])
	}
	return out
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

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
