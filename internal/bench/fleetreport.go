package main

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The fleet's part of the report: what the quotas allow a start, the
// targets' verdicts and reasons, and the prose of section 5, all derived
// from the measured numbers and the quotas the emulator enforced.

// startNeed is what one quota asks of a fleet start: the calls every
// instance makes under it and how long the whole fleet's calls take at it.
type startNeed struct {
	call  string // as the report names it
	op    string // as the emulator counts it
	calls int    // per instance
	tps   float64
}

func (n startNeed) seconds(instances int) float64 {
	return float64(n.calls*instances) / n.tps
}

// startNeeds lists the quotas a start of the fleet's template meets, the
// one that takes longest first.
func startNeeds(instances int, sessionTPS float64) []startNeed {
	needs := []startNeed{
		{"CreateSession", opSession, 1, sessionTPS},
		{"GetSecretValue", opGet, sizeFleet.secrets, awsQuotas[opGet]},
		{"GetParameters", opParams, (sizeFleet.params + 9) / 10, awsQuotas[opParams]},
	}
	slices.SortStableFunc(needs, func(a, b startNeed) int {
		return cmp.Compare(b.seconds(instances), a.seconds(instances))
	})
	return needs
}

// callOfReason is the call a failure kind (failureKind) is about.
func callOfReason(kind string) string {
	switch {
	case strings.HasPrefix(kind, "CreateSession"), strings.Contains(kind, "credentials"):
		return "CreateSession"
	case strings.Contains(kind, "GetParameters"):
		return "GetParameters"
	case strings.Contains(kind, "GetSecretValue"):
		return "GetSecretValue"
	}
	return ""
}

// topReason is the most frequent failure kind and its count.
func topReason(m map[string]int) (string, int) {
	best, n := "", 0
	for k, v := range m {
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return best, n
}

// startedWithin counts the starts that succeeded within d of the common
// start.
func (f *fleetStart) startedWithin(d time.Duration) int {
	n := 0
	for _, t := range f.startedAt {
		if t <= d {
			n++
		}
	}
	return n
}

// deadlineSecs is rolesenv's default --timeout, in seconds.
func deadlineSecs() float64 { return fleetStartTimeout.Seconds() }

// fleetWhy explains a fleet start's failed first starts from the failure
// kinds measured and the quotas' arithmetic, and says what would close the
// gap. It is "" when no first start failed.
func fleetWhy(f *fleetStart) string {
	if f.failedFirst == 0 {
		return ""
	}
	kind, count := topReason(f.reasons)
	call := callOfReason(kind)
	var need startNeed
	for _, n := range startNeeds(f.instances, f.sessionTPS) {
		if n.call == call {
			need = n
		}
	}
	var w strings.Builder
	fmt.Fprintf(&w, "Most failed starts (%d of %d) are *%s*. ", count, totalFailures(f), kind)
	if need.tps == 0 {
		w.WriteString("No quota explains it; see *Fleet*.")
		return w.String()
	}
	secs := need.seconds(f.instances)
	fmt.Fprintf(&w, "%s quota is %s a second: the fleet's %s calls take at least %.0f s, ", possessive(need.call), num(need.tps), num(float64(need.calls*f.instances)), secs)
	if secs > deadlineSecs() {
		allowed := int(need.tps*deadlineSecs()+need.tps) / need.calls
		fmt.Fprintf(&w, "more than the start-up deadline (`--timeout` %v), in which it lets about %d instances start (the quota's %v and its one-second burst); %d did. ",
			fleetStartTimeout, allowed, fleetStartTimeout, f.startedWithin(fleetStartTimeout))
	} else {
		fmt.Fprintf(&w, "%.0f%% of the start-up deadline (`--timeout` %v), and throttled calls wait a random 0.5 to 5 s between tries, so the last ones run out of time. ",
			100*secs/deadlineSecs(), fleetStartTimeout)
	}
	switch need.call {
	case "CreateSession":
		fmt.Fprintf(&w, "Closing it: raise the quota (adjustable in Service Quotas) to at least instances / deadline, %s a second for %d instances, or start the fleet in waves of at most %d.",
			num(math.Ceil(float64(f.instances)/deadlineSecs())), f.instances, int(need.tps*deadlineSecs()))
	case "GetParameters":
		fmt.Fprintf(&w, "Closing it: Parameter Store's higher throughput setting (a paid option that raises GetParameters' quota), the parameters in Secrets Manager (GetSecretValue: %s a second), or waves of instances whose calls fit well within the deadline.",
			num(awsQuotas[opGet]))
	default:
		w.WriteString("Closing it: a higher quota, or waves of instances whose calls fit well within the deadline.")
	}
	return w.String()
}

func totalFailures(f *fleetStart) int {
	n := 0
	for _, v := range f.reasons {
		n += v
	}
	return n
}

// possessive is "X's", or "X'" for a name that ends in s.
func possessive(name string) string {
	if strings.HasSuffix(name, "s") {
		return name + "'"
	}
	return name + "'s"
}

// num prints a quota or a count with thousands separators.
func num(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// fleetStartRows are the targets' rows of the fleet starts.
func (r *report) fleetStartRows() []targetRow {
	var rows []targetRow
	for _, f := range r.fleetStarts {
		m := fmt.Sprintf("%d of %d first starts failed", f.failedFirst, f.instances)
		switch {
		case f.failed == 0 && f.allStarted > 0 && f.failedFirst > 0:
			m += fmt.Sprintf("; with restarts every %v, all had started after %s", r.fleetRestartDelay, secs(f.allStarted))
		case f.failed == 0 && f.allStarted > 0:
			m += fmt.Sprintf("; the slowest start took %s of the %v deadline", secs(f.durations.quantile(1)), fleetStartTimeout)
		case f.failed > 0:
			m += fmt.Sprintf("; %d had not started after %d starts each", f.failed, f.attempts)
		}
		row := targetRow{
			target:   fmt.Sprintf("fleet of %d: zero failed starts (%s, CreateSession %s/s)", f.instances, f.name, num(f.sessionTPS)),
			measured: m, ok: f.failedFirst == 0, why: fleetWhy(f),
		}
		if row.ok && len(f.durations) > 0 {
			row.margin = fmt.Sprintf("%.1f s to spare", (fleetStartTimeout - f.durations.quantile(1)).Seconds())
		}
		rows = append(rows, row)
	}
	return rows
}

// hourRates are the peak-over-mean ratios of the hour of polling, by
// bucket: as sent, as scheduled, and replayed with rolesenv's spread and
// with a check's calls at once.
type hourRates struct {
	bucket                      int
	mean                        float64
	sent, sched, replay, atOnce float64
}

func (h *fleetHour) rates(bucket int) hourRates {
	return hourRates{
		bucket: bucket,
		mean:   rates(rebucket(h.perSecond, bucket)).Mean,
		sent:   rates(rebucket(h.perSecond, bucket)).Ratio,
		sched:  rates(rebucket(h.scheduled, bucket)).Ratio,
		replay: rates(rebucket(replay(h, h.spread), bucket)).Ratio,
		atOnce: rates(rebucket(replay(h, 0), bucket)).Ratio,
	}
}

// peakRow is the target row of the fleet's request rate while polling.
func (r *report) peakRow() (targetRow, bool) {
	h := r.fleetHour
	if h == nil {
		return targetRow{}, false
	}
	s, m10, m60 := h.rates(1), h.rates(10), h.rates(60)
	row := targetRow{
		target: fmt.Sprintf("fleet: after the start burst, peak request rate at most twice the mean (calls of a check spread over %v)", h.spread),
		measured: fmt.Sprintf("per simulated second %.2f× as sent, %.2f× as scheduled (the rule replayed: %.2f×); per 10 s %.2f×; per minute %.2f×",
			s.sent, s.sched, s.replay, m10.sent, m60.sent),
		ok: s.sent <= 2,
	}
	switch {
	case s.replay > 2:
		row.why = fmt.Sprintf("The rule itself gives %.2f× when replayed without I/O: uncoordinated checks bunch by chance (see *Fleet*). Spreading a check's calls over longer, or coordinating the instances, would lower it.", s.replay)
	case s.sched > 2:
		row.why = "The watches' timers placed the calls that way although the rule's replay stays under twice the mean: a chance peak of this run; see *Fleet*."
	default:
		row.why = fmt.Sprintf("The timers placed the calls within the target (%.2f×), and the rule's replay agrees (%.2f×); the calls were sent later than scheduled when this machine fell behind the simulated clock (%.0f× real time). A slower simulated clock would measure the rule rather than the machine.",
			s.sched, s.replay, h.scale)
	}
	return row, true
}

// replay runs the watch's timing rule without I/O for the fleet of h.
func replay(h *fleetHour, spread time.Duration) []int {
	rng := rand.New(rand.NewPCG(1, 2))
	return simulateSchedule(rng, h.instances, h.interval, time.Hour, callsPerCheck(), spread)
}

// expectedChecks is how many checks an instance makes in the hour by the
// rule: the replay's calls per instance and check.
func (h *fleetHour) expectedChecks() float64 {
	sum := 0
	for _, c := range replay(h, h.spread) {
		sum += c
	}
	return float64(sum) / float64(callsPerCheck()) / math.Max(float64(h.instances), 1)
}

func (r *report) writeFleet(p printer) {
	if len(r.fleetStarts) == 0 {
		return
	}
	p("## 5. Fleet\n\n")
	n := r.fleetStarts[0].instances
	p("%d simulated instances in the harness, each with its own certificate (same CA), Roles Anywhere client and credentials, SDK HTTP client and connections, resolving a template of %d secrets and %d SecureString parameters with inject's Load (what `rolesenv run` does at start-up, with `--timeout`'s default %v as the deadline) and then watching it with inject's Source.Watch. The emulator enforces AWS's documented default quotas per account and region: GetSecretValue 10,000 TPS, BatchGetSecretValue 100, DescribeSecret 40,000, GetParameters 40 and CreateSession 10, the default that the IAM Roles Anywhere user guide documents (*Quotas*: \"Rate of CreateSession requests\", 10 per second, adjustable). ",
		n, sizeFleet.secrets, sizeFleet.params, fleetStartTimeout)
	p("A start that fails ends its process (the harness cuts off what the start left running, such as the signer's retries of CreateSession) and is restarted after %v, as a service manager would, with new connections and credentials.\n\n", r.fleetRestartDelay)
	p("**The CreateSession quota is an assumption.** The first start uses the documented default, 10 a second. The second uses %s a second: the quota is adjustable and AWS grants increases on request, but documents no maximum, so %s is an assumed, modest increase (ten times the default), not a documented value. Throttled calls are retried until the deadline: the signer's CreateSession with its backoff (250 ms doubling to 10 s, with jitter), inject's GetSecretValue and GetParameters with a random wait of 0.5 s doubling to 5 s.\n\n",
		num(r.raisedTPS()), num(r.raisedTPS()))

	p("What each quota asks of a start of the whole fleet (calls of all instances / quota), against the deadline of %v:\n\n", fleetStartTimeout)
	p("| CreateSession quota | CreateSession | GetSecretValue | GetParameters |\n| --- | --- | --- | --- |\n")
	for _, f := range r.fleetStarts {
		cells := map[string]string{}
		for _, need := range startNeeds(f.instances, f.sessionTPS) {
			c := fmt.Sprintf("%s calls / %s/s = %.1f s", num(float64(need.calls*f.instances)), num(need.tps), need.seconds(f.instances))
			if need.seconds(f.instances) > deadlineSecs() {
				c = "**" + c + "**"
			}
			cells[need.call] = c
		}
		p("| %s/s | %s | %s | %s |\n", num(f.sessionTPS), cells["CreateSession"], cells["GetSecretValue"], cells["GetParameters"])
	}
	p("\n")

	p("| start | CreateSession quota | first starts failed | started within %v | starts failed in all | why | time until all started | start time median / p90 | throttled calls | calls |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n", fleetStartTimeout)
	for _, f := range r.fleetStarts {
		all := secs(f.allStarted)
		if f.failed > 0 {
			all = fmt.Sprintf("%d never started", f.failed)
		}
		p("| %s | %s/s | %d of %d | %d | %d | %s | %s | %s / %s ms | %d | %s |\n", f.name, num(f.sessionTPS), f.failedFirst, f.instances,
			f.startedWithin(fleetStartTimeout), totalFailures(f), reasonsLine(f.reasons), all, ms(f.durations.median()), ms(f.durations.p90()),
			f.calls.throttled(), opsLine(f.calls.Calls, 1))
	}
	p("\n")
	for _, f := range r.fleetStarts {
		p("*%s* (CreateSession %s/s): ", f.name, num(f.sessionTPS))
		if f.failedFirst == 0 {
			p("every instance started on its first start; the slowest took %s of the %v deadline.", secs(f.durations.quantile(1)), fleetStartTimeout)
			if need := startNeeds(f.instances, f.sessionTPS)[0]; need.seconds(f.instances) > deadlineSecs()/2 {
				p(" The longest of the quotas here is %s (%s a second): %.0f s for the fleet's %s calls, %.0f%% of the deadline; a larger fleet, or anything else in the account calling %s meanwhile, would fail starts.",
					possessive(need.call), num(need.tps), need.seconds(f.instances), num(float64(need.calls*f.instances)), 100*need.seconds(f.instances)/deadlineSecs(), need.call)
			}
		} else {
			p("%s", fleetWhy(f))
		}
		if c := f.calls.Calls[opSession]; c > 0 {
			p(" CreateSession was called %s times for %d sessions (%s throttled).", num(float64(c)), f.instances, num(float64(f.calls.Throttled[opSession])))
		}
		p("\n\n")
	}
	f := r.fleetStarts[0]
	p("The start times are this machine's: the harness performs every instance's TLS handshakes and signatures on %d cores (harness %.1f s and emulator %.1f s of CPU for the first start), so they say how the load queues, not how fast one instance starts.\n\n",
		r.machine.cores, f.cpuHarness.Seconds(), f.cpuEmulator.Seconds())
	p("**For large fleets** (what an operator must do): a fleet that starts at once needs CreateSession's quota to be at least instances / start-up deadline (%s a second for %d instances at `--timeout` %v; the default 10 a second covers about %d); raise it in Service Quotas, lengthen `--timeout`, or start the fleet in waves. Parameter Store's GetParameters allows 40 calls a second, shared with every other reader in the account and region, and a start calls it once per 10 parameters: at most about %s instances with up to 10 parameters can start within %v, fewer with margin for retries and other readers; beyond that, Parameter Store's higher throughput setting, or the values in Secrets Manager.\n\n",
		num(math.Ceil(float64(n)/deadlineSecs())), n, fleetStartTimeout, int(documentedSessionTPS*deadlineSecs()), num(awsQuotas[opParams]*deadlineSecs()), fleetStartTimeout)

	h := r.fleetHour
	if h == nil {
		return
	}
	p("### A simulated hour of polling\n\n")
	p("The %d started instances of the last start then watch through one hour of a clock %.0f times faster than real time (a watch takes an injected Clock (WatchOptions.Clock); %v of real time), at the default interval %v with the spread `rolesenv run` gives a check's calls at that interval (%v: `checkSpread`, a tenth of the interval, at most 10 s), on the same clock. The emulator's quotas are scaled by the same factor so that they hold per simulated second (their token buckets' bursts scale too, which is more lenient than AWS). All watchers start at the same instant, the worst case for the first-offset rule. The factor is what this machine keeps up with: at 60×, checks slipped behind their timers and bunched after each stall; the checks counted below against the rule's own count show whether it kept up. Credentials are not refreshed within the simulated hour (they follow real time).\n\n",
		h.instances, h.scale, h.real.Round(time.Second), h.interval, h.spread)
	p("| measure | value |\n| --- | --- |\n")
	p("| calls in the hour | %s |\n", opsLine(h.calls.Calls, 1))
	p("| checks per instance | %.2f (the rule: %.2f; the interval runs from a check's last call, %v after its first) |\n",
		h.checksPerInst, h.expectedChecks(), (checkPeriod(h.interval, h.spread, callsPerCheck()) - h.interval).Round(100*time.Millisecond))
	p("| throttled calls / failed checks (warnings) / new environments | %d / %d / %d |\n", h.calls.throttled(), h.warnings, h.changes)
	p("| CPU of the harness and the emulator over the hour | %.0f s in %v: %.0f%% of this machine |\n", h.cpu.Seconds(), h.real.Round(time.Second),
		100*h.cpu.Seconds()/(h.real.Seconds()*float64(r.machine.cores)))
	p("\n")
	p("Peak over mean of the requests, by bucket of simulated time. *Sent*: requests as the instances sent them (this machine's scheduling delays included); *scheduled*: calls where the watches' timers put them (a check's first call at its timer, each other call at the timer the spread gives it); *replay*: the same rule replayed without I/O, with rolesenv's spread of %v and, for comparison, with a check's calls at once (as before the spread).\n\n", h.spread)
	p("| bucket | mean requests | sent | scheduled | replay, spread over %v | replay, calls at once |\n| --- | --- | --- | --- | --- | --- |\n", h.spread)
	for _, k := range []int{1, 10, 60} {
		x := h.rates(k)
		p("| %d s | %.1f | %.2f× | %.2f× | %.2f× | %.2f× |\n", k, x.mean, x.sent, x.sched, x.replay, x.atOnce)
	}
	calls := callsPerCheck()
	lambda := rates(h.scheduled).Mean / float64(calls)
	secsN := len(h.scheduled)
	p("\nChecks start at %.2f a second on average. With a check's %d calls sent together, the busiest of %d seconds would hold the calls of about %d checks by chance alone (the median of the largest of %d Poisson(%.2f) counts), %.1f× the mean: that is the *calls at once* column. ",
		lambda, calls, secsN, poissonPeak(lambda, secsN), secsN, lambda, float64(poissonPeak(lambda, secsN))/math.Max(lambda, 1e-9))
	if h.spread > 0 {
		sp := h.spread.Seconds()
		k := poissonPeak(lambda*sp, secsN)
		p("Spread over %v, a second holds a share of every check started in the %v before it, about %.0f checks: the busiest of %d such counts is about %d, %.2f× the mean (the replay, which keeps each call's exact place, gives %.2f×). ",
			h.spread, h.spread, lambda*sp, secsN, k, float64(k)/(lambda*sp), h.rates(1).replay)
	}
	p("The peak second, %.0f requests, is %.2f%% of DescribeSecret's quota.\n\n", rates(h.perSecond).Peak, 100*rates(h.perSecond).Peak/awsQuotas[opDescribe])
}

// raisedTPS is the CreateSession quota of the last fleet start.
func (r *report) raisedTPS() float64 {
	if len(r.fleetStarts) == 0 {
		return raisedSessionTPS
	}
	return r.fleetStarts[len(r.fleetStarts)-1].sessionTPS
}
