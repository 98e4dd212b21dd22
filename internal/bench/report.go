package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rolesenv/rolesenv/inject"
)

// report is everything measured, for the markdown.
type report struct {
	quick        bool
	command      string
	args         string
	began        time.Time
	took         time.Duration
	machine      machine
	load0, load1 string
	roots        sample // x509.SystemCertPool in a fresh process
	rootsIndex   sample // internal/sysroots's index of the same roots, in a fresh process

	exec        []*execCell
	execSamples int
	overhead    *overhead
	credproc    *credprocResult
	footprint   *footprint
	metrics     *metricsReport
	polls       []*pollRow

	fleetStarts       []*fleetStart
	fleetRestartDelay time.Duration
	fleetHour         *fleetHour

	keys   *keysResult
	reload *reloadResult
}

type printer func(format string, args ...any)

// ms prints a duration in milliseconds: two decimals below 10 ms, one
// below 100 ms.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "0"
	case math.Abs(v) < 10:
		return fmt.Sprintf("%.2f", v)
	case math.Abs(v) < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func pct(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }

func yes(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func (r *report) markdown() string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("# Benchmarks\n\n")
	p("This file is generated: `%s` rewrites it (`go run ./internal/bench %s`).\n", r.command, r.args)
	p("Run on %s; the run took %v.\n\n", r.began.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))
	p("- Machine: %s, %d cores, Linux %s, %s (%s).\n", r.machine.cpu, r.machine.cores, r.machine.kernel, r.machine.goVer, r.machine.os)
	p("- Load average (1, 5, 15 min): %s at the start, %s at the end.\n", r.load0, r.load1)
	if r.quick {
		p("- **Quick run** (`make bench-quick`): fewer sizes, latencies and samples, a fleet of 50, a 6-second footprint. Use `make bench` for the numbers the decisions rest on.\n")
	}
	p("\n")
	r.writeTargets(p)
	r.writeDecisions(p)
	r.writeMethod(p)
	r.writeExec(p)
	r.writeOverhead(p)
	r.writeInitCosts(p)
	r.writeCredproc(p)
	r.writeFootprint(p)
	r.writeMetrics(p)
	r.writePolls(p)
	r.writeFleet(p)
	r.writeReload(p)
	p("%s", batchChoice)
	r.writeKeys(p)
	r.writeVariation(p)
	return w.String()
}

// cell finds a measured time-to-exec cell.
func (r *report) cell(s size, m latencyMode, rtt time.Duration, c creds, t trust) *execCell {
	for _, x := range r.exec {
		if x.size == s && x.mode == m && x.rtt == rtt && x.creds == c && x.trust == t {
			return x
		}
	}
	return nil
}

// over is how far rolesenv's median is above the floor's, in round trips.
func over(c *execCell) time.Duration { return c.rolesenv.median() - c.floor.median() }

func speedup(c *execCell) float64 {
	if len(c.baseline) == 0 || c.rolesenv.median() <= 0 {
		return 0
	}
	return float64(c.baseline.median()) / float64(c.rolesenv.median())
}

const targetRTT = 20 * time.Millisecond

// targetRow is one line of the targets table.
type targetRow struct {
	target, measured string
	ok               bool
	margin           string // how much to spare or over, "" when not a quantity
	why              string // when missed: why, and what would close it
}

func (r *report) targetRows() []targetRow {
	var rows []targetRow
	roots := ms(r.rootsIndex.median())
	start := "–"
	if r.overhead != nil {
		start = ms(r.overhead.once.median() - r.overhead.bare.median())
	}
	rows = append(rows, r.plainTargetRows()...)
	for _, m := range []latencyMode{viaToxiproxy, viaEmulator} {
		st := r.cell(size50, m, targetRTT, credStatic, trustSystem)
		ra := r.cell(size50, m, targetRTT, credRA, trustSystem)
		cpuWhy := fmt.Sprintf("What is over the floor is CPU, not round trips: starting rolesenv (%s ms, see *Wrapper overhead*), indexing the system's roots (%s ms), reading the configuration and the key, signing. ", start, roots)
		if m == viaEmulator {
			cpuWhy += "With the emulator's latency no handshake costs a round trip, so nothing overlaps that CPU. "
		}
		cpuWhy += "A faster process start (less package initialisation, a smaller binary) would close it; with `AWS_CA_BUNDLE` the roots are not read at all (see the table with it)."
		if st != nil {
			d := targetRTT - over(st)
			rows = append(rows, targetRow{
				target:   fmt.Sprintf("50 secrets, 20 ms RTT (%s), static: at most the floor + 1 RTT", m),
				measured: fmt.Sprintf("%s ms; floor %s ms; floor + %s ms", ms(st.rolesenv.median()), ms(st.floor.median()), ms(over(st))),
				ok:       d >= 0, margin: marginText(d), why: cpuWhy,
			})
		}
		if ra != nil {
			d := targetRTT - over(ra)
			rows = append(rows, targetRow{
				target:   "the same, Roles Anywhere: CreateSession concurrent with the services' connections, at most 1 RTT over its floor (CreateSession + the round)",
				measured: fmt.Sprintf("%s ms; floor %s ms; floor + %s ms", ms(ra.rolesenv.median()), ms(ra.floor.median()), ms(over(ra))),
				ok:       d >= 0, margin: marginText(d), why: cpuWhy,
			})
		}
		for _, c := range []*execCell{st, ra} {
			if c == nil || len(c.baseline) == 0 {
				continue
			}
			x := speedup(c)
			rows = append(rows, targetRow{
				target:   fmt.Sprintf("the same (%s), %s: at least 10 times faster than the sequential baseline", m, c.creds),
				measured: fmt.Sprintf("baseline %s ms / %s ms = %.1f×", ms(c.baseline.median()), ms(c.rolesenv.median()), x),
				ok:       x >= 10,
				why:      "rolesenv's fixed costs (process start, roots) weigh against 50 round trips of the baseline.",
			})
		}
	}
	rows = append(rows, r.cpuTargetRows()...)
	rows = append(rows, r.credprocTargetRows()...)
	if o := r.overhead; o != nil {
		d := o.once.median() - o.bare.median()
		rows = append(rows, targetRow{
			target:   "`--once`, literals only: at most 10 ms median over the bare command",
			measured: fmt.Sprintf("%s ms over (bare %s ms, `--once` %s ms)", ms(d), ms(o.bare.median()), ms(o.once.median())),
			ok:       d <= 10*time.Millisecond, margin: marginText(10*time.Millisecond - d),
			why: fmt.Sprintf("Starting a %.0f MB Go binary: package initialisation alone is %s ms (GODEBUG=inittrace%s), then `--once` execs the child in place, which tears the Go process down (its threads and mappings). Between `main` and the execve rolesenv now reads the env file, catches only the signals that end a start-up and resets four of them: no pidfd probe, no job control, no secrets directory without files. Closing it: lighter package initialisation, a smaller binary.",
				float64(o.binarySize)/1e6, ms(o.initTime), o.initTop()),
		})
	}
	if f := r.footprint; f != nil {
		rssMB := float64(f.maxRSS) / 1024
		rows = append(rows, targetRow{
			target:   "watching 50 references: RSS at most 20 MB",
			measured: fmt.Sprintf("%.1f MB: %.1f MB private, %.1f MB the binary's mapped pages", rssMB, float64(f.maxAnon)/1024, float64(f.maxFile)/1024),
			ok:       rssMB <= 20, margin: fmt.Sprintf("%.1f MB %s", math.Abs(rssMB-20), map[bool]string{true: "to spare", false: "over"}[rssMB <= 20]),
			why: r.rssWhy(),
		})
		gets := f.calls.Calls[opGet]
		for _, row := range r.polls {
			gets += row.idle[opGet]
		}
		rows = append(rows, targetRow{
			target:   "no GetSecretValue on a poll where nothing changed",
			measured: fmt.Sprintf("%d in %.0f checks of the watching rolesenv; %d in %d in-process checks", f.calls.Calls[opGet], f.polls, gets-f.calls.Calls[opGet], r.idlePolls()),
			ok:       gets == 0,
			why:      "a GetSecretValue without a version change is a bug in the watcher.",
		})
		share := 100 * f.idle.cpu.Seconds() / f.idleWindow.Seconds()
		rows = append(rows, targetRow{
			target: "no measurable CPU while idle (below 0.05% of a core: `top` shows 0.0)",
			measured: fmt.Sprintf("%.3f%% of a core (%s ms in %v by the scheduler's count; %d clock ticks), %.1f wake-ups a second",
				share, ms(f.idle.cpu), f.idleWindow, int64(f.idle.ticks/(10*time.Millisecond)), float64(f.idle.wakeups)/f.idleWindow.Seconds()),
			ok:  share < 0.05,
			why: r.idleWhy(),
		})
	}
	if row, ok := r.metricsTargetRow(); ok {
		rows = append(rows, row)
	}
	rows = append(rows, r.fleetStartRows()...)
	if row, ok := r.peakRow(); ok {
		rows = append(rows, row)
	}
	return rows
}

func marginText(d time.Duration) string {
	if d < 0 {
		return ms(-d) + " ms over"
	}
	return ms(d) + " ms to spare"
}

func (r *report) writeTargets(p printer) {
	p("## Targets\n\n")
	p("| target | measured | result | why, and what would close it |\n| --- | --- | --- | --- |\n")
	for _, t := range r.targetRows() {
		res := yes(t.ok)
		if t.margin != "" {
			res += " (" + t.margin + ")"
		}
		why := ""
		if !t.ok {
			why = t.why
		}
		p("| %s | %s | %s | %s |\n", t.target, t.measured, res, why)
	}
	p("\n")
}

func (r *report) idlePolls() int {
	n := 0
	for _, row := range r.polls {
		n += row.polls
	}
	return n
}

// pollCalls is what one check of a template of size s costs: one
// DescribeSecret a secret, one GetParameters per 10 parameters.
func pollCalls(s size) int { return s.secrets + (s.params+9)/10 }

// callsPerCheck is what one check of the fleet's template costs.
func callsPerCheck() int { return pollCalls(sizeFleet) }

func (r *report) writeDecisions(p printer) {
	p("## What the numbers decided\n\n")
	// Fetch strategy.
	p("**Fetch strategy: BatchAuto is confirmed.** ")
	p("Every start made exactly the calls BatchAuto predicts (column *calls/start* below: GetSecretValue each for up to 10 secrets, BatchGetSecretValue 20 a call beyond, GetParameters 10 names a call, one CreateSession), so one fetch round covers any template")
	if c1, c200 := r.cell(size1, viaToxiproxy, 100*time.Millisecond, credStatic, trustSystem), r.cell(size200, viaToxiproxy, 100*time.Millisecond, credStatic, trustSystem); c1 != nil && c200 != nil {
		p(": at 100 ms RTT through Toxiproxy, 1 secret starts in %s ms and 200 in %s ms (floors %s and %s ms)", ms(c1.rolesenv.median()), ms(c200.rolesenv.median()), ms(c1.floor.median()), ms(c200.floor.median()))
	}
	p(". The sequential baseline grows by one round trip per secret")
	if c := r.cell(size200, viaEmulator, 20*time.Millisecond, credStatic, trustSystem); c != nil && len(c.baseline) > 0 {
		p(" (%s s for 200 at 20 ms, against %s ms for rolesenv)", fmt.Sprintf("%.1f", c.baseline.median().Seconds()), ms(c.rolesenv.median()))
	}
	p(". In the fleet, templates of 10 secrets never touch BatchGetSecretValue's 100 TPS quota (parallel GetSecretValue, quota 10,000 TPS), and a throttled batch falls back to GetSecretValue at once, as *Batch or parallel* argues; nothing here argues for a different threshold.\n\n")

	// Interval, jitter and spread.
	sp := checkSpread(inject.DefaultInterval)
	p("**Default `--interval` 5m, jitter ±10%%, a random first offset and a spread of %v: confirmed.** ", sp)
	if row := r.pollRow(size10); row != nil {
		perPoll := row.idlePerPoll()
		calls := size10.secrets
		at5, at1 := checksPerHour(inject.DefaultInterval, calls), checksPerHour(time.Minute, calls)
		p("A check of 10 secrets costs %.0f DescribeSecret calls and no GetSecretValue. The next check is due an interval after a check's last call, which the spread puts %v after its first, so at 5m a watcher checks %.1f times an hour: %.0f calls an hour, %s a month per instance, $%.2f a month at Secrets Manager's $0.05 per 10,000 calls; at 1m (spread %v) it would be %.1f checks an hour and $%.2f a month. ",
			perPoll, (checkPeriod(inject.DefaultInterval, sp, calls) - inject.DefaultInterval).Round(100*time.Millisecond), at5, perPoll*at5, num(perPoll*at5*24*30), perPoll*at5*24*30*0.05/10000,
			checkSpread(time.Minute), at1, perPoll*at1*24*30*0.05/10000)
	}
	if h := r.fleetHour; h != nil {
		s, m10, m60 := h.rates(1), h.rates(10), h.rates(60)
		p("A fleet of %d instances with %d secrets and %d parameters each polls at %.1f requests a second on average (DescribeSecret's quota is 40,000 a second), although every watcher started at the same instant; against the rule replayed without I/O, the peak is %.2f× the mean per second (replay %.2f×; with a check's calls at once, %.2f×), %.2f× per 10 s (replay %.2f×), %.2f× per minute (replay %.2f×). ",
			h.instances, sizeFleet.secrets, sizeFleet.params, rates(h.perSecond).Mean, s.sent, s.replay, s.atOnce, m10.sent, m10.replay, m60.sent, m60.replay)
	}
	p("Rotation reaches the child within one interval, the spread and the debounce; a shorter default would multiply the calls (and the bill) for every user to gain minutes that `--refresh-signal` gives on demand (a check asked for by signal is not spread).\n\n")

	if len(r.fleetStarts) > 0 {
		p("**Start-up under throttling: throttled calls are tried again until the deadline.** ")
		p("The signer retries a throttled CreateSession, and inject a throttled GetSecretValue or GetParameters, until the start-up deadline (`--timeout`) rather than for a fixed number of attempts. ")
		f := r.fleetStarts[0]
		if need := startNeeds(f.instances, f.sessionTPS)[0]; need.seconds(f.instances) > deadlineSecs() {
			p("That turns failed starts into slower ones only within the deadline: under the documented quotas a fleet of %d needs %.0f s of %s's quota, more than the %v deadline. ",
				f.instances, need.seconds(f.instances), need.call, fleetStartTimeout)
		}
		p("Measured: ")
		for i, f := range r.fleetStarts {
			if i > 0 {
				p("; ")
			}
			p("at %s/s, %d of %d first starts failed", num(f.sessionTPS), f.failedFirst, f.instances)
			if f.failed == 0 && f.allStarted > 0 {
				p(" and all had started after %s", secs(f.allStarted))
			}
		}
		p(". The arithmetic is under *Fleet*; the README's *Large fleets* tells operators what to do: raise CreateSession's quota to at least instances / `--timeout` (the default 10 a second covers about %d instances at 30 s), start in waves, or give `--timeout` more time.\n\n", int(documentedSessionTPS*deadlineSecs()))
	}

	p("**Start-up: connections are opened while CreateSession is in flight.** ")
	p("The first runs of this benchmark showed Roles Anywhere costing two round trips more than static credentials at 20 ms RTT through Toxiproxy (CreateSession's handshake and call, and only then the Secrets Manager handshake), plus the loading of the system's roots after the first server answer; now it costs one. `preconnect.go` now dials the first round's connections concurrently with CreateSession and loads the roots in the background (commit message has the before and after numbers); the tables below are with that change.\n\n")

	r.writeStartupDecision(p)
	r.writeProposals(p)
}

// writeProposals lists what the numbers argue for in code this harness
// does not own.
func (r *report) writeProposals(p printer) {
	var items []string
	if f := r.footprint; f != nil && f.idle.wakeups > 0 {
		w, ws := float64(f.idle.wakeups)/f.idleWindow.Seconds(), float64(f.idleStdin.wakeups)/f.idleWindow.Seconds()
		items = append(items, fmt.Sprintf("An idle rolesenv wakes %.1f times a second; with the template on standard input, which is never looked at again, %.1f (*Supervisor footprint*): the look at the env files every second (`DefaultFileInterval`) is what wakes it. inotify, or a longer interval, would leave it asleep.", w, ws))
	}
	if f := r.footprint; f != nil && f.maxRSS > 20*1024 {
		items = append(items, fmt.Sprintf("The watcher's RSS (%.1f MB, target 20 MB) is now mostly the binary's own pages (%.1f MB): a smaller release binary would lower it, e.g. the emulator of `rolesenv dev` behind a build tag, and no SDK client whose package initialisation allocates schemas for a whole service to call two of its operations (see *Supervisor footprint*).",
			float64(f.maxRSS)/1024, float64(f.maxFile)/1024))
	}
	if len(items) == 0 {
		return
	}
	p("**Not changed, proposed** (code or documents of other packages; see *Fleet* and *Supervisor footprint* for the numbers):\n\n")
	for _, it := range items {
		p("- %s\n", it)
	}
	p("\n")
}

func (r *report) pollRow(s size) *pollRow {
	for _, row := range r.polls {
		if row.size == s {
			return row
		}
	}
	return nil
}

func (r *report) writeMethod(p printer) {
	p("## How it is measured\n\n")
	p("Everything runs on this machine, on loopback. The AWS side is `internal/awsdev` over HTTPS, in a process of its own (the harness re-executed in emulator mode), seeded with 200 secrets and 20 SecureString parameters, with a Roles Anywhere trust anchor, profile and role. Three Toxiproxy proxies (the Go library, in the harness) put Roles Anywhere, Secrets Manager and Parameter Store on addresses of their own, as AWS does, so that no client shares a connection between two services; three more do the same for the emulator's plain-HTTP listener.\n\n")
	p("- **Latency** comes one of two ways. *emulator*: the emulator waits the RTT before each answer; handshakes cost nothing. *toxiproxy*: the proxies delay data by half the RTT each way; a TLS 1.3 handshake then costs one RTT, but the TCP handshake with the proxy costs none, so a new connection costs one RTT where it costs two on a real network. **The floor is measured through the same proxies, so it leaves out the TCP round trip too.**\n")
	p("- **Trust**: the emulator's CA is added to a copy of the system's CA bundle named by `SSL_CERT_FILE`, so rolesenv verifies against the system's roots as it does against AWS, and pays for reading them (%s ms median in a fresh process here to index them, where crypto/x509 would take %s ms to load them). Two cells use `AWS_CA_BUNDLE` instead, as `rolesenv dev` does; four use plain HTTP (the emulator's second, plain listener, through proxies of their own), with `SSL_CERT_FILE` still set.\n", ms(r.rootsIndex.median()), ms(r.roots.median()))
	p("- **Time to exec** is from just before the harness forks `rolesenv run --once --env-file refs.env -- /bin/echo ready` to the first byte of the child's output on a pipe. The child is /bin/echo: it runs, writes and exits; nothing is added to rolesenv's path, and the bare command is timed the same way (its own start, about a millisecond, is in every number). Each rolesenv is the real binary, built at the start with `go build -trimpath -ldflags '-s -w'`, and starts with new connections.\n")
	p("- **The floor** is a minimal Go client in the harness doing only what cannot be avoided: with Roles Anywhere, CreateSession on a new connection while the connections of the fetch round are dialled; one TLS connection per call of the round; the round itself, every call at once (BatchGetSecretValue 20 ids a call, GetParameters 10 names a call). No process start, no configuration, no env file. Its CPU time comes from the same round in a program of its own (`internal/bench/floorcmd`, a fresh Go process linking the SDK's Secrets Manager and SSM clients and rolesenv's signer), run once per sample after the floor.\n")
	p("- **The baseline** is what most tools do: credentials (CreateSession, or none), then one GetSecretValue (or GetParameter) per variable, one after the other, on one reused connection.\n")
	p("- rolesenv, floor and baseline take turns sample by sample, so a change in the machine's load touches all three. Where a baseline sample would take long, fewer are taken (the *n* column). **API calls** are the emulator's counters, reset before each start.\n")
	p("- Every process (the harness, the emulator, each rolesenv) has `AWS_EC2_METADATA_DISABLED=true`, empty temporary AWS config and credentials files and explicit endpoints; each rolesenv gets an environment built from scratch: `PATH HOME AWS_EC2_METADATA_DISABLED AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_ENDPOINT_URL_SSM`, `SSL_CERT_FILE` or `AWS_CA_BUNDLE`, and `AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY` or `ROLESENV_CERTIFICATE ROLESENV_PRIVATE_KEY ROLESENV_TRUST_ANCHOR_ARN ROLESENV_PROFILE_ARN ROLESENV_ROLE_ARN ROLESENV_ENDPOINT`.\n")
	p("- Medians and p90 interpolate between ranks; *spread* is the interquartile range over the median.\n\n")
}

func (r *report) writeExec(p printer) {
	if len(r.exec) == 0 {
		return
	}
	p("## 1. Time to exec\n\n")
	p("%d samples per cell; milliseconds. *over floor* is rolesenv's median minus the floor's; *× baseline* is the baseline's median over rolesenv's. %s\n\n", r.execSamples, cpuColumns)
	for _, cr := range []creds{credStatic, credRA} {
		p("### %s credentials\n\n", cr)
		p("| refs | RTT | latency | rolesenv median | CPU | p90 | floor | floor CPU | over floor | baseline (n) | × baseline | calls/start (BatchAuto) | spread |\n")
		p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, c := range r.exec {
			if c.creds != cr || c.trust != trustSystem {
				continue
			}
			p("%s\n", execRow(c))
		}
		p("\n")
	}
	if r.writeTrustTable(p, trustBundle, "### With `AWS_CA_BUNDLE` (the SDK trusts that file alone)") {
		p("\nWith `AWS_CA_BUNDLE`, nothing loads the system's roots: the SDK's clients and the Roles Anywhere client both trust the bundle alone, so these cells leave out the roots' cost (%s ms here) that the tables above pay, partly overlapped with the round trips.\n\n", ms(r.rootsIndex.median()))
	}
	if r.writeTrustTable(p, trustPlain, "### Plain HTTP (no TLS at all)") {
		p("\nEvery endpoint is `http://`, Roles Anywhere's included, through proxies of their own to the emulator's plain-HTTP listener; the floor dials plain TCP. No handshake, and rolesenv loads no roots: what is left over the floor is the process's start and its own work.\n\n")
	}
	p("Reading the tables: with the emulator's latency a new connection costs no round trip, so what is left over the floor is CPU: starting a Go process (see *Wrapper overhead*), indexing the system's roots, reading the configuration and the key, signing. Through Toxiproxy the handshakes cost round trips, and the overlap of CreateSession with the services' handshakes shows: Roles Anywhere costs about one round trip more than static credentials.\n\n")
}

func callsCell(c *execCell) string {
	var sum int64
	for _, n := range c.calls {
		sum += n
	}
	avg := float64(sum) / float64(max(1, len(c.calls)))
	s := fmt.Sprintf("%.1f", avg)
	if avg == math.Trunc(avg) {
		s = fmt.Sprint(int64(avg))
	}
	want := expectedCalls(c.size, c.creds)
	if avg != float64(want) {
		return fmt.Sprintf("%s (**%d**)", s, want)
	}
	return fmt.Sprintf("%s (%d)", s, want)
}

func execRow(c *execCell) string {
	base, x := "–", "–"
	if len(c.baseline) > 0 {
		base = fmt.Sprintf("%s (%d)", ms(c.baseline.median()), len(c.baseline))
		x = fmt.Sprintf("%.1f", speedup(c))
	}
	rtt := "0"
	if c.rtt > 0 {
		rtt = c.rtt.String()
	}
	mode := c.mode.String()
	if c.rtt == 0 {
		mode = "–"
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", c.size.name, rtt, mode,
		ms(c.rolesenv.median()), cpuCell(c.rolesenvCPU), ms(c.rolesenv.p90()), ms(c.floor.median()), cpuCell(c.floorCPU), ms(over(c)), base, x, callsCell(c), pct(c.rolesenv.spread()))
}

func (r *report) writeOverhead(p printer) {
	o := r.overhead
	if o == nil {
		return
	}
	p("## 2. Wrapper overhead\n\n")
	p("An env file of 21 literal variables, no reference: rolesenv reads it and starts the command, and asks for no AWS configuration or credentials. %d samples each, taking turns; milliseconds to the child's first byte.\n\n", len(o.bare))
	p("| command | median | p90 | over the bare command (median) | spread |\n| --- | --- | --- | --- | --- |\n")
	p("| `/bin/echo ready` | %s | %s | | %s |\n", ms(o.bare.median()), ms(o.bare.p90()), pct(o.bare.spread()))
	p("| `rolesenv run --once --env-file literals.env -- /bin/echo ready` | %s | %s | %s | %s |\n", ms(o.once.median()), ms(o.once.p90()), ms(o.once.median()-o.bare.median()), pct(o.once.spread()))
	p("| `rolesenv run --env-file literals.env -- /bin/echo ready` (watching) | %s | %s | %s | %s |\n\n", ms(o.watching.median()), ms(o.watching.p90()), ms(o.watching.median()-o.bare.median()), pct(o.watching.spread()))
	p("The overhead is the start of a %.1f MB static Go binary: the runtime, then package initialisation, %s ms by GODEBUG=inittrace%s; for `--once`, also a second execve that tears the Go process down. The watching mode forks the child instead and keeps running (and, once it runs, lowers its garbage collector's target: see *Supervisor footprint*).\n\n",
		float64(o.binarySize)/1e6, ms(o.initTime), o.initTop())
}

// initTop names the package whose initialisation allocates most, as a
// parenthesis.
func (o *overhead) initTop() string {
	if o.init.top == "" {
		return ""
	}
	return fmt.Sprintf(" (%.1f MB allocated; the most by %s: %.1f MB in %s ms)", float64(o.init.bytes)/1e6, o.init.top, float64(o.init.topBytes)/1e6, ms(o.init.topTime))
}

func (r *report) writeFootprint(p printer) {
	f := r.footprint
	if f == nil {
		return
	}
	p("## 3. Supervisor footprint\n\n")
	p("`rolesenv run --env-file refs-50.env --interval 1s -- /bin/sh -c 'echo ready; exec sleep 100000'` with Roles Anywhere credentials, read from /proc every second for %v once the child runs.\n\n", f.window)
	p("| measure | value |\n| --- | --- |\n")
	p("| RSS, largest sample (VmRSS) | %.1f MB |\n", float64(f.maxRSS)/1024)
	p("| of which private (RssAnon) / the binary's mapped pages (RssFile) | %.1f MB / %.1f MB |\n", float64(f.maxAnon)/1024, float64(f.maxFile)/1024)
	p("| RSS, smallest sample; of which the binary's mapped pages | %.1f MB; %.1f MB |\n", float64(f.minRSS)/1024, float64(f.minFile)/1024)
	p("| RSS, last sample: private / the binary's mapped pages | %.1f MB / %.1f MB |\n", float64(f.anon)/1024, float64(f.file)/1024)
	p("| peak RSS (VmHWM) | %.1f MB |\n", float64(f.hwm)/1024)
	p("| threads | %d |\n", f.threads)
	period := checkPeriod(f.interval, checkSpread(f.interval), pollCalls(size50))
	p("| checks in the window (DescribeSecret calls / 50) | %.0f (the rule: %.0f, a check every %v: the interval after the last of 50 calls spread over %v) |\n",
		f.polls, f.window.Seconds()/period.Seconds(), period.Round(time.Millisecond), checkSpread(f.interval))
	p("| CPU over the window | %s ms (%.2f%% of a core) |\n", ms(f.cpu), 100*f.cpu.Seconds()/f.window.Seconds())
	p("| CPU per check of 50 secrets | %s ms |\n", ms(time.Duration(float64(f.cpu)/math.Max(f.polls, 1))))
	p("| API calls in the window | %s |\n", opsLine(f.calls.Calls, 1))
	p("| idle (`--interval 1h`, no check due), for %v: CPU | %s ms (%d clock ticks) |\n", f.idleWindow, ms(f.idle.cpu), int64(f.idle.ticks/(10*time.Millisecond)))
	p("| idle: wake-ups (voluntary context switches) | %.1f a second |\n", float64(f.idle.wakeups)/f.idleWindow.Seconds())
	p("| idle, template on standard input (no file to look at): CPU / wake-ups | %s ms / %.1f a second |\n", ms(f.idleStdin.cpu), float64(f.idleStdin.wakeups)/f.idleWindow.Seconds())
	p("| idle: checks seen | %d |\n", f.idle.checks+f.idleStdin.checks)
	p("| idle: RSS | %.1f MB |\n", float64(f.idle.rssKB)/1024)
	p("| the binary (file) | %.1f MB |\n", float64(f.binarySize)/1e6)
	p("| garbage collections in the window; the last one's live heap / goal | %d; %d MB / %d MB |\n", f.gc.n, f.gc.live, f.gc.goal)
	if o := r.overhead; o != nil && o.init.bytes > 0 {
		p("| heap allocated by package initialisation (`rolesenv version`, GODEBUG=inittrace); the largest | %.1f MB; %s %.1f MB (%s ms) |\n",
			float64(o.init.bytes)/1e6, o.init.top, float64(o.init.topBytes)/1e6, ms(o.init.topTime))
	}
	p("\n")
	p("%s\n\n", r.rssText())
	if f.calls.Calls[opDescribe] > 0 {
		p("At 1 s the spread is %v: a check's 50 calls go out %v apart, each on its own wake-up, which costs more CPU per check than one burst would; at the default interval the spread is %v.\n\n",
			checkSpread(f.interval), checkSpread(f.interval)/50, checkSpread(inject.DefaultInterval))
	}
	p("CPU is the sum of the threads' on-CPU time from /proc/PID/task/*/schedstat (nanoseconds); clock ticks are /proc/PID/stat's utime+stime (10 ms units, what `ps` and `top` show).\n\n")
}

func (r *report) writePolls(p printer) {
	if len(r.polls) == 0 {
		return
	}
	p("## 4. Poll cost\n\n")
	p("inject's Source.Watch in the harness, on a clock the harness steps (each check triggered by hand), against the emulator; calls from its counters. *One rotated*: a new AWSCURRENT version of one secret (and a new version of one parameter) put through the AWS APIs before the check. Per hour: at the default 5m and at 1m, with `rolesenv run`'s spread (%v and %v): the next check is due an interval after a check's last call, so a check of many calls comes a little less often than 60 / interval times an hour (the *checks* in brackets).\n\n",
		checkSpread(inject.DefaultInterval), checkSpread(time.Minute))
	p("| refs | calls per check, nothing changed | GetSecretValue in those checks | calls, one rotated | new environments | per hour at 5m (checks) | per hour at 1m (checks) |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range r.polls {
		per := row.idlePerPoll()
		c5, c1 := checksPerHour(inject.DefaultInterval, pollCalls(row.size)), checksPerHour(time.Minute, pollCalls(row.size))
		p("| %s | %s | %d in %d checks | %s | %d | %.0f (%.2f) | %.0f (%.2f) |\n", row.size.name, opsLine(row.idle, float64(row.polls)), row.idle[opGet], row.polls,
			opsLine(row.changed, 1), row.changes, per*c5, c5, per*c1, c1)
	}
	p("\nA check costs one DescribeSecret per distinct secret and one GetParameters per 10 parameters; GetSecretValue (by version id) and a decrypted GetParameters follow only for what moved. The real binary confirms it over a long run in *Supervisor footprint* (no GetSecretValue in %0.f checks).\n\n", r.footprintPolls())
}

func (r *report) footprintPolls() float64 {
	if r.footprint == nil {
		return 0
	}
	return r.footprint.polls
}

// batchChoice is inject's measurement behind BatchAuto, kept as it was
// when the rule was chosen: the harness does not run inject's benchmarks.
const batchChoice = `## 6. Batch or parallel: the choice behind BatchAuto

inject's ` + "`" + `BenchmarkResolve` + "`" + ` (` + "`" + `go test -bench Resolve ./inject` + "`" + `) resolves n AWSCURRENT secrets against the emulator with latency added to every answer, each run with new connections, once with BatchGetSecretValue (20 ids a call) and once with GetSecretValue per secret, 10 in flight (2-core machine, when the rule was chosen; calls in parentheses):

| latency | n | batch | parallel GetSecretValue |
| --- | --- | --- | --- |
| 0 ms | 1 | 1.6 ms (1) | 1.3 ms (1) |
| 0 ms | 10 | 1.4 ms (1) | 7.1 ms (10) |
| 0 ms | 50 | 2.9 ms (3) | 22 ms (50) |
| 0 ms | 200 | 9.3 ms (10) | 66 ms (200) |
| 20 ms | 1 | 22 ms (1) | 22 ms (1) |
| 20 ms | 10 | 22 ms (1) | 30 ms (10) |
| 20 ms | 50 | 25 ms (3) | 117 ms (50) |
| 20 ms | 200 | 42 ms (10) | 447 ms (200) |
| 100 ms | 1 | 103 ms (1) | 102 ms (1) |
| 100 ms | 10 | 102 ms (1) | 111 ms (10) |
| 100 ms | 50 | 104 ms (3) | 519 ms (50) |
| 100 ms | 200 | 116 ms (10) | 3041 ms (200) |

Batches answer in one round trip for any n; parallel GetSecretValue needs ceil(n/10) round trips (and n TLS handshakes: the few milliseconds at 0 ms). Up to 10 secrets, both take one. Quotas decide the rest: they are per account and region and shared by every process, BatchGetSecretValue 100 calls a second against 10,000 for GetSecretValue, so a batch moves at most 2,000 secrets a second, and a process with 1 to 10 secrets would spend a call of the small quota per start where GetSecretValue spends 1 to 10 of a quota 100 times larger (a fleet of 1,000 such processes: 10 seconds of the whole account's batch quota, or one second of GetSecretValue's). Hence BatchAuto: GetSecretValue in parallel while a region has at most 10 AWSCURRENT secrets, batches beyond, where they save ceil(n/10) - 1 round trips. A batch is sent without SDK retries and falls back to GetSecretValue at once when throttled or failing, so a fleet that exhausts the batch quota moves onto the larger one: ` + "`" + `BenchmarkFleetStart` + "`" + `, 150 processes of 20 secrets at once under the documented quotas, threw back about 65 of 150 batches, started every process and made 1,440 calls, against 3,000 with GetSecretValue only.

`

func (r *report) writeVariation(p printer) {
	p("## Variation\n\n")
	var spreads []float64
	for _, c := range r.exec {
		spreads = append(spreads, c.rolesenv.spread())
	}
	if len(spreads) > 0 {
		slices.Sort(spreads)
		p("Across the %d time-to-exec cells, the interquartile range of rolesenv's samples was %s of the median in the middle cell and %s in the worst. ",
			len(spreads), pct(spreads[len(spreads)/2]), pct(spreads[len(spreads)-1]))
	}
	p("Other work ran on this machine during the run (load average %s at the start, %s at the end): differences of a few milliseconds between cells, and between this file and the next run, are noise. The counts (API calls, checks, failed starts, throttled calls) do not depend on the load, except the fleet's start, which this machine's CPU paces.\n", r.load0, r.load1)
}

// rssParts describes the footprint's RSS from what was measured: the
// binary's pages against its size, and the private part against the Go
// heap's live size and goal.
func (r *report) rssParts() (file, private string) {
	f := r.footprint
	file = fmt.Sprintf("The binary's mapped pages (RssFile, %.1f MB in the largest sample; the file is %.1f MB) are the code and read-only data of the binary that the process touched: package initialisation runs code of every package, a check runs the SDK's, TLS's and HTTP's, and the kernel maps the 64 KB around each page fault (fault-around). When start-up is done, and again after each check, rolesenv unmaps them (MADV_DONTNEED on the binary's read-only mappings): the smallest sample, between two checks, held %.1f MB of them; a check maps them again. They are page cache: shared with every process running the same binary, reclaimable, and counted in a cgroup's memory.current whether a process maps them or not. Unmapping them lowers what ps and top show between checks, not what the machine holds; only a smaller binary makes fewer of them. The samples, one a second, fall at every phase of the checks, one every %v, so the largest is taken during a check when the window is long enough (a window of a few seconds may miss them all).",
		float64(f.maxFile)/1024, float64(f.binarySize)/1e6, float64(f.minFile)/1024,
		checkPeriod(f.interval, checkSpread(f.interval), pollCalls(size50)).Round(time.Millisecond))
	private = fmt.Sprintf("The private part (RssAnon, %.1f MB) is the Go heap and the runtime's own memory (stacks, the collector's and allocator's metadata). Once watching, rolesenv sets GOGC to %d (unless GOGC is set) and returns start-up's memory to the system, so the heap stays within a quarter over what is live: %d MB after the last of %d collections in the window, goal %d MB.",
		float64(f.anon)/1024, watchGCPercent, f.gc.live, f.gc.n, f.gc.goal)
	if o := r.overhead; o != nil && o.init.bytes > 0 {
		private += fmt.Sprintf(" Most of the live heap is allocated by package initialisation before rolesenv runs a line (%.1f MB; %s alone %.1f MB).",
			float64(o.init.bytes)/1e6, o.init.top, float64(o.init.topBytes)/1e6)
	}
	return file, private
}

// watchGCPercent mirrors rolesenv run's GOGC while watching (cmd_run.go,
// package main of the module, which the harness cannot import).
const watchGCPercent = 25

func (r *report) rssWhy() string {
	file, private := r.rssParts()
	return file + " " + private + " What is left would take a smaller binary and less initialised data (see *Supervisor footprint*)."
}

func (r *report) rssText() string {
	file, private := r.rssParts()
	s := "RSS is RssFile plus RssAnon. " + file + " " + private
	if r.footprint.maxRSS > 20*1024 {
		s += " What could close the rest of the 20 MB target is a smaller binary with less initialised data: the emulator of `rolesenv dev` out of the release build (when this section was written, a build without it was 0.8 MB smaller and mapped 0.8 MB less), and an SSM client that does not build a schema for every SSM operation to call two of them. Advising the binary's mappings MADV_RANDOM, to map single pages instead of 64 KB, was tried: Linux (6.18 when this was written) faults around whatever the advice. Returning the heap's free pages after every check (debug.FreeOSMemory) lowered RssAnon by 0.8 MB for 14% more CPU per check and seven times the idle CPU, and was not kept. A soft memory limit (GOMEMLIMIT) low enough to matter made the collector run all the time (CPU per check ×4)."
	}
	return s
}

// idleWhy explains idle wake-ups from the two idle measurements: with the
// env file watched and with the template on standard input.
func (r *report) idleWhy() string {
	f := r.footprint
	w, ws := float64(f.idle.wakeups)/f.idleWindow.Seconds(), float64(f.idleStdin.wakeups)/f.idleWindow.Seconds()
	if ws < w/2 {
		return fmt.Sprintf("%.1f wake-ups a second with the env file watched, %.1f with the template on standard input: the look at the env files every second (`DefaultFileInterval`) wakes the process.", w, ws)
	}
	return fmt.Sprintf("%.1f wake-ups a second with the env file watched, %.1f with the template on standard input: something other than the look at the files wakes the process.", w, ws)
}
