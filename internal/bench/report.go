package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
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

	exec        []*execCell
	execSamples int
	overhead    *overhead
	footprint   *footprint
	polls       []*pollRow

	fleetStarts       []*fleetStart
	fleetRestartDelay time.Duration
	fleetHour         *fleetHour
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
		p("- **Quick run** (`make bench-quick`): fewer sizes, latencies and samples, a fleet of 100, a 6-second footprint. Use `make bench` for the numbers the decisions rest on.\n")
	}
	p("\n")
	r.writeTargets(p)
	r.writeDecisions(p)
	r.writeMethod(p)
	r.writeExec(p)
	r.writeOverhead(p)
	r.writeFootprint(p)
	r.writePolls(p)
	r.writeFleet(p)
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
	roots := ms(r.roots.median())
	start := "–"
	if r.overhead != nil {
		start = ms(r.overhead.once.median() - r.overhead.bare.median())
	}
	for _, m := range []latencyMode{viaToxiproxy, viaEmulator} {
		st := r.cell(size50, m, targetRTT, credStatic, trustSystem)
		ra := r.cell(size50, m, targetRTT, credRA, trustSystem)
		cpuWhy := fmt.Sprintf("What is over the floor is CPU, not round trips: starting rolesenv (%s ms, see *Wrapper overhead*), loading the system's roots (%s ms), reading the configuration and the key, signing. ", start, roots)
		if m == viaEmulator {
			cpuWhy += "With the emulator's latency no handshake costs a round trip, so nothing overlaps that CPU. "
		}
		cpuWhy += "A faster process start (less package initialisation, a smaller binary) would close it; with `AWS_CA_BUNDLE` the roots are not loaded at all (see the table with it)."
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
	if o := r.overhead; o != nil {
		d := o.once.median() - o.bare.median()
		rows = append(rows, targetRow{
			target:   "`--once`, literals only: at most 10 ms median over the bare command",
			measured: fmt.Sprintf("%s ms over (bare %s ms, `--once` %s ms)", ms(d), ms(o.bare.median()), ms(o.once.median())),
			ok:       d <= 10*time.Millisecond, margin: marginText(10*time.Millisecond - d),
			why: fmt.Sprintf("Starting a %.0f MB Go binary: package initialisation alone is %s ms (GODEBUG=inittrace), then `--once` execs the child in place, which tears the Go process down. Closing it: lighter package initialisation (the SDK's service packages build their tables at init), a smaller binary.",
				float64(o.binarySize)/1e6, ms(o.initTime)),
		})
	}
	if f := r.footprint; f != nil {
		rssMB := float64(f.maxRSS) / 1024
		rows = append(rows, targetRow{
			target:   "watching 50 references: RSS at most 20 MB",
			measured: fmt.Sprintf("%.1f MB: %.1f MB private, %.1f MB the binary's mapped pages", rssMB, float64(f.anon)/1024, float64(f.file)/1024),
			ok:       rssMB <= 20, margin: fmt.Sprintf("%.1f MB %s", math.Abs(rssMB-20), map[bool]string{true: "to spare", false: "over"}[rssMB <= 20]),
			why: "Half of it is the binary's own pages (shared with the page cache, reclaimable); the private part is the Go heap with GOGC=100 and the runtime. A smaller binary, or a lower GOGC once started, would close it (see *Supervisor footprint*).",
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
			why: "the env-file look every second and the Go runtime's timers wake the process.",
		})
	}
	for i, fs := range r.fleetStarts {
		why := fmt.Sprintf("CreateSession's documented quota, 10 a second: %d sessions take at least %.0f s, and a start gives up after the signer's 5 attempts (about 4 s). A quota increase to at least instances / 30 s (AWS allows it), retrying throttled CreateSession until `--timeout`, or starting the fleet in waves would close it.",
			fs.instances, float64(fs.instances)/fs.sessionTPS)
		if i > 0 {
			why = "GetParameters' 40 TPS: the SDK's 3 attempts give up within a few seconds. Retrying throttled calls until `--timeout` (or Parameter Store's higher throughput) would close it."
		}
		m := fmt.Sprintf("%d of %d first starts failed", fs.failedFirst, fs.instances)
		if fs.failed == 0 && fs.allStarted > 0 {
			m += fmt.Sprintf("; with restarts every %v, all had started after %s", r.fleetRestartDelay, secs(fs.allStarted))
		}
		rows = append(rows, targetRow{
			target:   fmt.Sprintf("fleet of %d: zero failed starts (%s)", fs.instances, fs.name),
			measured: m, ok: fs.failedFirst == 0, why: why,
		})
	}
	if h := r.fleetHour; h != nil {
		sent, sched := rates(h.perSecond), rates(scale(h.checks, callsPerCheck()))
		rows = append(rows, targetRow{
			target: "fleet: after the start burst, peak request rate at most twice the mean",
			measured: fmt.Sprintf("per simulated second %.1f× as sent, %.1f× as scheduled; per 10 s %.1f×; per minute %.1f×",
				sent.Ratio, sched.Ratio, rates(rebucket(h.perSecond, 10)).Ratio, rates(rebucket(h.perSecond, 60)).Ratio),
			ok:  sent.Ratio <= 2,
			why: "Each check sends its calls at once, and uncoordinated checks bunch by chance: the jitter rule spreads checks as evenly as independent random times can (see *Fleet*). Spreading a check's calls over a few seconds would close it.",
		})
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

// callsPerCheck is what one check of the fleet's template costs.
func callsPerCheck() int { return sizeFleet.secrets + (sizeFleet.params+9)/10 }

func scale(v []int, k int) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = x * k
	}
	return out
}

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
	p(". In the fleet, templates of 10 secrets never touch BatchGetSecretValue's 100 TPS quota (parallel GetSecretValue, quota 10,000 TPS), and a throttled batch falls back to GetSecretValue at once, as inject's package documentation argues; nothing here argues for a different threshold.\n\n")

	// Interval and jitter.
	p("**Default `--interval` 5m, jitter ±10%% and a random first offset: confirmed.** ")
	if row := r.pollRow(size10); row != nil {
		perPoll := row.idlePerPoll()
		p("A check of 10 secrets costs %.0f DescribeSecret calls and no GetSecretValue; at 5m that is %.0f calls an hour, %.0f a month per instance, $%.2f a month at Secrets Manager's $0.05 per 10,000 calls; at 1m it would be $%.2f. ",
			perPoll, perPoll*12, perPoll*12*24*30, perPoll*12*24*30*0.05/10000, perPoll*60*24*30*0.05/10000)
	}
	if h := r.fleetHour; h != nil {
		p("A fleet of %d instances with %d secrets and %d parameters each polls at %.1f requests a second on average (DescribeSecret's quota is 40,000 a second), ",
			h.instances, sizeFleet.secrets, sizeFleet.params, rates(h.perSecond).Mean)
		rp := replay(h, 0)
		p("and its checks are as spread as the rule predicts when replayed without I/O: per 10 s the peak is %.2f× the mean (replay %.2f×), per minute %.2f× (replay %.2f×), although every watcher started at the same instant. ",
			rates(rebucket(h.perSecond, 10)).Ratio, rates(rebucket(rp, 10)).Ratio, rates(rebucket(h.perSecond, 60)).Ratio, rates(rebucket(rp, 60)).Ratio)
	}
	p("Rotation reaches the child within one interval plus the debounce; a shorter default would multiply the calls (and the bill) for every user to gain minutes that `--refresh-signal` gives on demand. The per-second peak is discussed under *Fleet*: it comes from each check sending its calls at once, not from the jitter rule.\n\n")

	p("**Start-up: connections are opened while CreateSession is in flight.** ")
	p("The first runs of this benchmark showed Roles Anywhere costing two round trips more than static credentials at 20 ms RTT through Toxiproxy (CreateSession's handshake and call, and only then the Secrets Manager handshake), plus the loading of the system's roots after the first server answer; now it costs one. `preconnect.go` now dials the first round's connections concurrently with CreateSession and loads the roots in the background (commit message has the before and after numbers); the tables below are with that change.\n\n")

	p("**Not changed, proposed** (code of other packages; see *Fleet* and *Footprint* for the numbers):\n\n")
	p("- A fleet that starts all at once is bounded by CreateSession's documented quota (10 a second): retrying throttled CreateSession within the start-up deadline with a longer back-off (and a quota increase for large fleets, which AWS allows) would turn most failed starts into slower ones. Today a throttled start gives up after the signer's 5 attempts (about 4 s), and the resolver's next request tries again.\n")
	p("- GetParameters' 40 TPS fails starts of a large fleet even with credentials in hand: retrying throttled parameter calls until `--timeout` (rather than the SDK's 3 attempts) would absorb it.\n")
	p("- Spreading one check's calls over a few seconds (one connection, one after the other) would bring the fleet's per-second peak under twice the mean and open fewer connections per check; the simulation in *Fleet* gives the expected effect.\n")
	p("- An idle rolesenv wakes every second to look at its env files (`DefaultFileInterval`); *Supervisor footprint* compares it with a template on standard input, which is never looked at again. inotify, or a longer interval, would leave it asleep.\n\n")
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
	p("Everything runs on this machine, on loopback. The AWS side is `internal/awsdev` over HTTPS, in a process of its own (the harness re-executed in emulator mode), seeded with 200 secrets and 20 SecureString parameters, with a Roles Anywhere trust anchor, profile and role. Three Toxiproxy proxies (the Go library, in the harness) put Roles Anywhere, Secrets Manager and Parameter Store on addresses of their own, as AWS does, so that no client shares a connection between two services.\n\n")
	p("- **Latency** comes one of two ways. *emulator*: the emulator waits the RTT before each answer; handshakes cost nothing. *toxiproxy*: the proxies delay data by half the RTT each way; a TLS 1.3 handshake then costs one RTT, but the TCP handshake with the proxy costs none, so a new connection costs one RTT where it costs two on a real network. **The floor is measured through the same proxies, so it leaves out the TCP round trip too.**\n")
	p("- **Trust**: the emulator's CA is added to a copy of the system's CA bundle named by `SSL_CERT_FILE`, so rolesenv verifies against the system's roots as it does against AWS, and pays for loading them (%s ms median in a fresh process here). Two cells use `AWS_CA_BUNDLE` instead, as `rolesenv dev` does.\n", ms(r.roots.median()))
	p("- **Time to exec** is from just before the harness forks `rolesenv run --once --env-file refs.env -- /bin/echo ready` to the first byte of the child's output on a pipe. The child is /bin/echo: it runs, writes and exits; nothing is added to rolesenv's path, and the bare command is timed the same way (its own start, about a millisecond, is in every number). Each rolesenv is the real binary, built at the start with `go build -trimpath -ldflags '-s -w'`, and starts with new connections.\n")
	p("- **The floor** is a minimal Go client in the harness doing only what cannot be avoided: with Roles Anywhere, CreateSession on a new connection while the connections of the fetch round are dialled; one TLS connection per call of the round; the round itself, every call at once (BatchGetSecretValue 20 ids a call, GetParameters 10 names a call). No process start, no configuration, no env file.\n")
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
	p("%d samples per cell; milliseconds. *over floor* is rolesenv's median minus the floor's; *× baseline* is the baseline's median over rolesenv's.\n\n", r.execSamples)
	for _, cr := range []creds{credStatic, credRA} {
		p("### %s credentials\n\n", cr)
		p("| refs | RTT | latency | rolesenv median | p90 | floor | over floor | baseline (n) | × baseline | calls/start (BatchAuto) | spread |\n")
		p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, c := range r.exec {
			if c.creds != cr || c.trust != trustSystem {
				continue
			}
			p("%s\n", execRow(c))
		}
		p("\n")
	}
	var extra []*execCell
	for _, c := range r.exec {
		if c.trust == trustBundle {
			extra = append(extra, c)
		}
	}
	if len(extra) > 0 {
		p("### With `AWS_CA_BUNDLE` (the SDK trusts that file alone)\n\n")
		p("| refs | RTT | latency | creds | rolesenv median | p90 | floor | over floor | calls/start | spread |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, c := range extra {
			p("| %s | %v | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.size.name, c.rtt, c.mode, c.creds,
				ms(c.rolesenv.median()), ms(c.rolesenv.p90()), ms(c.floor.median()), ms(over(c)), callsCell(c), pct(c.rolesenv.spread()))
		}
		p("\nWith `AWS_CA_BUNDLE`, static credentials never load the system's roots (the SDK uses the bundle alone), while the Roles Anywhere client adds the bundle to the system's roots and loads them before CreateSession, where nothing overlaps them.\n\n")
	}
	p("Reading the tables: with the emulator's latency a new connection costs no round trip, so what is left over the floor is CPU: starting a Go process (see *Wrapper overhead*), loading the system's roots, reading the configuration and the key, signing. Through Toxiproxy the handshakes cost round trips, and the overlap of CreateSession with the services' handshakes shows: Roles Anywhere costs about one round trip more than static credentials.\n\n")
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
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", c.size.name, rtt, mode,
		ms(c.rolesenv.median()), ms(c.rolesenv.p90()), ms(c.floor.median()), ms(over(c)), base, x, callsCell(c), pct(c.rolesenv.spread()))
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
	p("The overhead is the start of a %.1f MB static Go binary: the runtime, then package initialisation, %s ms by GODEBUG=inittrace (the AWS SDK's service packages build their tables at init); for `--once`, also a second execve that tears the Go process down. The watching mode forks the child instead and keeps running.\n\n",
		float64(o.binarySize)/1e6, ms(o.initTime))
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
	p("| of which private (RssAnon) / the binary's mapped pages (RssFile) | %.1f MB / %.1f MB |\n", float64(f.anon)/1024, float64(f.file)/1024)
	p("| peak RSS (VmHWM) | %.1f MB |\n", float64(f.hwm)/1024)
	p("| threads | %d |\n", f.threads)
	p("| checks in the window (DescribeSecret calls / 50) | %.0f |\n", f.polls)
	p("| CPU over the window | %s ms (%.2f%% of a core) |\n", ms(f.cpu), 100*f.cpu.Seconds()/f.window.Seconds())
	p("| CPU per check of 50 secrets | %s ms |\n", ms(time.Duration(float64(f.cpu)/math.Max(f.polls, 1))))
	p("| API calls in the window | %s |\n", opsLine(f.calls.Calls, 1))
	p("| idle (`--interval 1h`, no check due), for %v: CPU | %s ms (%d clock ticks) |\n", f.idleWindow, ms(f.idle.cpu), int64(f.idle.ticks/(10*time.Millisecond)))
	p("| idle: wake-ups (voluntary context switches) | %.1f a second |\n", float64(f.idle.wakeups)/f.idleWindow.Seconds())
	p("| idle, template on standard input (no file to look at): CPU / wake-ups | %s ms / %.1f a second |\n", ms(f.idleStdin.cpu), float64(f.idleStdin.wakeups)/f.idleWindow.Seconds())
	p("| idle: checks seen | %d |\n", f.idle.checks+f.idleStdin.checks)
	p("| idle: RSS | %.1f MB |\n\n", float64(f.idle.rssKB)/1024)
	p("RSS counts the pages of the binary that the process has touched (RssFile): they are shared with the page cache and dropped first under memory pressure; the private memory is RssAnon. At 1 s polling the Go heap grows between collections (GOGC=100). Closing the 20 MB target would take a smaller binary (the SDK's full service packages, the emulator of `rolesenv dev`) or a lower GOGC after start-up; neither is done here.\n\n")
	p("CPU is the sum of the threads' on-CPU time from /proc/PID/task/*/schedstat (nanoseconds); clock ticks are /proc/PID/stat's utime+stime (10 ms units, what `ps` and `top` show).\n\n")
}

func (r *report) writePolls(p printer) {
	if len(r.polls) == 0 {
		return
	}
	p("## 4. Poll cost\n\n")
	p("The inject Watcher in the harness, on a clock the harness steps (each check triggered by hand), against the emulator; calls from its counters. *One rotated*: a new AWSCURRENT version of one secret (and a new version of one parameter) put through the AWS APIs before the check. Per hour: at the default 5m (12 checks) and at 1m.\n\n")
	p("| refs | calls per check, nothing changed | GetSecretValue in those checks | calls, one rotated | new environments | per hour at 5m | per hour at 1m |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range r.polls {
		per := row.idlePerPoll()
		p("| %s | %s | %d in %d checks | %s | %d | %.0f | %.0f |\n", row.size.name, opsLine(row.idle, float64(row.polls)), row.idle[opGet], row.polls,
			opsLine(row.changed, 1), row.changes, per*12, per*60)
	}
	p("\nA check costs one DescribeSecret per distinct secret and one GetParameters per 10 parameters; GetSecretValue (by version id) and a decrypted GetParameters follow only for what moved. The real binary confirms it over a long run in *Supervisor footprint* (no GetSecretValue in %0.f checks).\n\n", r.footprintPolls())
}

func (r *report) footprintPolls() float64 {
	if r.footprint == nil {
		return 0
	}
	return r.footprint.polls
}

func (r *report) writeFleet(p printer) {
	if len(r.fleetStarts) == 0 {
		return
	}
	p("## 5. Fleet\n\n")
	n := r.fleetStarts[0].instances
	p("%d simulated instances in the harness, each with its own certificate (same CA), Roles Anywhere client and credentials, SDK HTTP client and connections, resolving a template of %d secrets and %d SecureString parameters with the inject Resolver (what `rolesenv run` does at start-up, `--timeout` 30s) and then watching it with the inject Watcher. The emulator enforces AWS's documented default quotas per account and region: GetSecretValue 10,000 TPS, BatchGetSecretValue 100, DescribeSecret 40,000, GetParameters 40 and **CreateSession 10**, the default that the IAM Roles Anywhere user guide documents (*Quotas*: \"Rate of CreateSession requests\", adjustable). A start that fails is restarted after %v, as a service manager would.\n\n",
		n, sizeFleet.secrets, sizeFleet.params, r.fleetRestartDelay)
	p("| start | CreateSession quota | first starts failed | starts failed in all | why | time until all started | start time median / p90 | throttled calls | calls |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, f := range r.fleetStarts {
		total := 0
		for _, v := range f.reasons {
			total += v
		}
		all := secs(f.allStarted)
		if f.failed > 0 {
			all = fmt.Sprintf("%d never started", f.failed)
		}
		p("| %s | %.0f/s | %d of %d | %d | %s | %s | %s / %s ms | %d | %s |\n", f.name, f.sessionTPS, f.failedFirst, f.instances, total,
			reasonsLine(f.reasons), all, ms(f.durations.median()), ms(f.durations.p90()), f.calls.throttled(), opsLine(f.calls.Calls, 1))
	}
	p("\n")
	if len(r.fleetStarts) > 0 {
		f := r.fleetStarts[0]
		p("Under the documented quota, %d instances need at least %.0f s of CreateSession quota; a start gives up after the signer's 5 attempts (about 4 s), so most first starts fail and the restarts hammer CreateSession (%d calls for %d sessions). ",
			f.instances, float64(f.instances)/documentedSessionTPS, f.calls.Calls[opSession], f.instances)
		if len(r.fleetStarts) > 1 {
			g := r.fleetStarts[1]
			p("With CreateSession out of the way (quota raised to %.0f/s), %d first starts still fail on GetParameters' 40 TPS after the SDK's 3 attempts. ", g.sessionTPS, g.failedFirst)
		}
		p("The start times are this machine's: the harness performs every instance's TLS handshakes and signatures on 2 cores (harness %s s and emulator %s s of CPU for the first start), so they say how the load queues, not how fast one instance starts.\n\n",
			fmt.Sprintf("%.1f", f.cpuHarness.Seconds()), fmt.Sprintf("%.1f", f.cpuEmulator.Seconds()))
	}
	h := r.fleetHour
	if h == nil {
		return
	}
	p("### A simulated hour of polling\n\n")
	p("The %d started instances of the last start then watch through one hour of a clock %.0f times faster than real time (the Watcher takes an injected Clock; %v of real time), default interval %v; the emulator's quotas are scaled by the same factor so that they hold per simulated second (their token buckets' bursts scale too, which is more lenient than AWS). All watchers start at the same instant, the worst case for the first-offset rule. The factor is what this machine keeps up with: at 60×, checks slipped behind their timers and bunched after each stall, and the counts below (12 checks an instance) show whether it kept up. Credentials are not refreshed within the simulated hour (they follow real time).\n\n",
		h.instances, h.scale, h.real.Round(time.Second), h.interval)
	p("| measure | value |\n| --- | --- |\n")
	p("| calls in the hour | %s |\n", opsLine(h.calls.Calls, 1))
	p("| checks per instance | %.1f (12 expected) |\n", h.checksPerInst)
	p("| throttled calls / failed checks (warnings) / new environments | %d / %d / %d |\n", h.calls.throttled(), h.warnings, h.changes)
	p("| CPU of the harness and the emulator over the hour | %.0f s in %v: %.0f%% of this machine |\n", h.cpu.Seconds(), h.real.Round(time.Second),
		100*h.cpu.Seconds()/(h.real.Seconds()*float64(r.machine.cores)))
	p("\n")
	lambda := rates(h.checks).Mean
	rp0, rp10 := replay(h, 0), replay(h, 10*time.Second)
	p("Peak over mean of the requests, by bucket of simulated time. *Sent*: requests as the instances sent them (this machine's scheduling delays included); *scheduled*: checks as the Watchers set their timers, times %d calls; *replay*: the same rule replayed without I/O (first check at a random point of the first interval, then every interval ±10%%), with a check's calls at once or spread over 10 s.\n\n", callsPerCheck())
	p("| bucket | mean requests | sent | scheduled | replay, calls at once | replay, calls spread over 10 s |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, k := range []int{1, 10, 60} {
		p("| %d s | %.1f | %.2f× | %.2f× | %.2f× | %.2f× |\n", k, rates(rebucket(h.perSecond, k)).Mean,
			rates(rebucket(h.perSecond, k)).Ratio, rates(rebucket(scale(h.checks, callsPerCheck()), k)).Ratio,
			rates(rebucket(rp0, k)).Ratio, rates(rebucket(rp10, k)).Ratio)
	}
	pk := poissonPeak(lambda, len(h.checks))
	chance := float64(pk) / math.Max(lambda, 1e-9)
	p("\nChecks start at %.2f a second on average. By chance alone, the busiest of %d seconds of independent checks holds about %d of them (the median of the largest of %d Poisson(%.2f) counts), %.1f× the mean. ",
		lambda, len(h.checks), pk, len(h.checks), lambda, chance)
	if chance > 2 {
		p("With the %d calls of a check going out together, a per-second peak under twice the mean is out of reach of any schedule that does not coordinate the instances; spreading each check's calls is what would reach it (last column). ", callsPerCheck())
	}
	p("The peak second, %.0f requests, is %.2f%% of DescribeSecret's quota.\n\n", rates(h.perSecond).Peak, 100*rates(h.perSecond).Peak/awsQuotas[opDescribe])
}

// replay runs the Watcher's timing rule without I/O for the fleet of h.
func replay(h *fleetHour, spread time.Duration) []int {
	rng := rand.New(rand.NewPCG(1, 2))
	return simulateSchedule(rng, h.instances, h.interval, time.Hour, callsPerCheck(), spread)
}

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
