// Command bench measures rolesenv and writes BENCHMARKS.md: time to exec
// against the floor and a naive baseline, the wrapper's overhead, the
// supervisor's footprint, the cost of polling, and a fleet under AWS's
// quotas. `make bench` and `make bench-quick` run it:
//
//	go run ./internal/bench -out BENCHMARKS.md          # under 15 minutes
//	go run ./internal/bench -quick -out BENCHMARKS.md   # under a minute
//
// Everything runs on loopback against internal/awsdev over HTTPS, the
// emulator in a process of its own; latency comes from the emulator (a
// wait before each answer) or from Toxiproxy (data delayed both ways),
// in this process. Nothing can reach AWS: this process and every rolesenv
// it starts have AWS_EC2_METADATA_DISABLED=true, empty temporary AWS
// configuration files and explicit endpoints, and every rolesenv gets an
// environment built from scratch.
//
// Other flags: -only exec,overhead,credproc,footprint,metrics,poll,fleet,keys,reload runs some sections;
// -rolesenv BIN measures a given binary instead of building one; -rolesenv
// OLD -compare NEW prints the start-up cells of two binaries side by side
// (the numbers before and after a change); -fleet-size and -fleet-scale
// change the fleet (at more than 20x this 2-core machine falls behind the
// simulated clock).
//
// It asserts nothing about speed: it measures and reports. Its own tests
// check the statistics and the report's rendering.
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rolesenv/rolesenv/internal/sysroots"
)

// echoPath is the child whose first output byte marks "running".
var echoPath = "/bin/echo"

func main() {
	if os.Getenv(reloadChildVar) == "reload-server" { // the reload section's child (reload.go)
		os.Exit(reloadServer(os.Getenv("BENCH_ADDR"), os.Getenv("SECRET_FILE")))
	}
	os.Exit(run())
}

type options struct {
	quick    bool
	out      string
	only     map[string]bool
	rolesenv string
	compare  string
	// Fleet size and clock scale; 0 means the mode's default.
	fleetSize  int
	fleetScale float64
}

func (o options) want(section string) bool { return len(o.only) == 0 || o.only[section] }

// Sections, in the order they run.
var sections = []string{"exec", "overhead", "credproc", "footprint", "metrics", "poll", "fleet", "keys", "reload"}

func run() int {
	var o options
	var only string
	emulatorMode := flag.Bool("emulator", false, "internal: run the emulator process")
	rootsProbe := flag.String("roots-probe", "", "internal: print how long loading the system's roots takes, by x509 (crypto/x509's pool) or index (internal/sysroots)")
	dir := flag.String("dir", "", "internal: the emulator's directory")
	flag.BoolVar(&o.quick, "quick", false, "fewer samples and sizes (under a minute)")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "where to write the report (- for standard output)")
	flag.StringVar(&only, "only", "", "comma-separated sections to run: "+strings.Join(sections, ","))
	flag.StringVar(&o.rolesenv, "rolesenv", "", "measure this rolesenv binary instead of building one from the module")
	flag.StringVar(&o.compare, "compare", "", "only compare start-up times of the rolesenv under test (A) and this binary (B), printed")
	flag.IntVar(&o.fleetSize, "fleet-size", 0, "simulated instances (default 1000, quick 50)")
	flag.Float64Var(&o.fleetScale, "fleet-scale", 0, "how much faster than real time the fleet's hour runs (default 20, quick 720)")
	flag.Parse()
	if *rootsProbe != "" {
		t := time.Now()
		load := func() error { _, err := x509.SystemCertPool(); return err }
		if *rootsProbe == "index" {
			load = func() error { _, err := sysroots.Load(); return err }
		}
		if err := load(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Println(time.Since(t).Nanoseconds())
		return 0
	}
	if *emulatorMode {
		if err := runEmulator(*dir); err != nil {
			fmt.Fprintln(os.Stderr, "bench emulator:", err)
			return 1
		}
		return 0
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			if !slices.Contains(sections, s) {
				fmt.Fprintf(os.Stderr, "bench: unknown section %q (want %s)\n", s, strings.Join(sections, ", "))
				return 2
			}
			o.only[s] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := benchmark(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench: error:", err)
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func benchmark(ctx context.Context, o options) error {
	began := time.Now()
	if _, err := os.Stat(echoPath); err != nil {
		p, err := exec.LookPath("echo")
		if err != nil {
			return fmt.Errorf("no echo program for the child: %v", err)
		}
		echoPath = p
	}
	dir, err := os.MkdirTemp("", "rolesenv-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := isolateAWS(dir); err != nil {
		return err
	}
	rep := &report{quick: o.quick, began: began, machine: describeMachine(), load0: loadAvg()}
	rep.command = "make bench"
	if o.quick {
		rep.command = "make bench-quick"
	}
	rep.args = strings.Join(os.Args[1:], " ")

	b := &bench{dir: dir, quick: o.quick, log: logf, rolesenv: o.rolesenv}
	if b.rolesenv == "" {
		logf("building rolesenv")
		if b.rolesenv, err = buildRolesenv(dir); err != nil {
			return err
		}
	}
	if b.floorCmd, err = buildFloorCmd(dir); err != nil {
		return err
	}
	if b.emu, err = startEmulator(dir, os.Environ()); err != nil {
		return err
	}
	defer b.emu.close()
	if err := b.systemRoots(); err != nil {
		return err
	}
	if b.proxies, err = startProxies(b.emu.URL, b.emu.HTTPURL); err != nil {
		return err
	}
	defer b.proxies.close()

	if rep.roots, err = b.measureRoots(ctx, 5, "x509"); err != nil {
		return err
	}
	if rep.rootsIndex, err = b.measureRoots(ctx, 5, "index"); err != nil {
		return err
	}
	if o.compare != "" {
		n := 12
		if o.quick {
			n = 4
		}
		return b.compare(ctx, os.Stdout, o.compare, n)
	}
	if o.want("exec") {
		if err := b.runExec(ctx, rep); err != nil {
			return err
		}
	}
	if o.want("overhead") {
		n := 100
		if o.quick {
			n = 20
		}
		logf("wrapper overhead: %d samples", n)
		if rep.overhead, err = b.measureOverhead(ctx, n); err != nil {
			return fmt.Errorf("overhead: %w", err)
		}
	}
	if o.want("credproc") {
		n := 30
		if o.quick {
			n = 10
		}
		logf("cached credential-process: %d samples", n)
		if rep.credproc, err = b.measureCredproc(ctx, n); err != nil {
			return fmt.Errorf("credential-process: %w", err)
		}
	}
	if o.want("footprint") {
		window, idle := 2*time.Minute, 20*time.Second
		if o.quick {
			window, idle = 6*time.Second, 3*time.Second
		}
		logf("footprint: %v polling every second, then %v idle", window, idle)
		if rep.footprint, err = b.measureFootprint(ctx, window, idle); err != nil {
			return fmt.Errorf("footprint: %w", err)
		}
	}
	if o.want("metrics") {
		window := 20 * time.Second
		if o.quick {
			window = 5 * time.Second
		}
		logf("metrics: three builds, %v watching each, off and on", window)
		if rep.metrics, err = b.measureMetrics(ctx, window); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	if o.want("poll") {
		sizes := []size{size1, size10, size50, size200, sizeMix}
		polls := 3
		if o.quick {
			sizes, polls = []size{size1, size50, sizeMix}, 2
		}
		for _, s := range sizes {
			logf("poll cost: %s references", s.name)
			row, err := b.measurePolls(ctx, s, polls)
			if err != nil {
				return fmt.Errorf("poll cost %s: %w", s.name, err)
			}
			rep.polls = append(rep.polls, row)
		}
	}
	if o.want("fleet") {
		if err := b.runFleet(ctx, rep, o.fleetSize, o.fleetScale); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
	}
	if o.want("keys") {
		if err := b.runKeys(ctx, rep); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	}
	if o.want("reload") {
		trials := 6
		if o.quick {
			trials = 2
		}
		if rep.reload, err = b.measureReload(ctx, trials); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
	}
	rep.took = time.Since(began)
	rep.load1 = loadAvg()
	text := rep.markdown()
	if o.out == "-" {
		_, err = os.Stdout.WriteString(text)
		return err
	}
	logf("writing %s (%v)", o.out, rep.took.Round(time.Second))
	return os.WriteFile(o.out, []byte(text), 0o644)
}

// runExec measures time to exec for every cell of the plan.
func (b *bench) runExec(ctx context.Context, rep *report) error {
	id, err := b.identity()
	if err != nil {
		return err
	}
	cells, samples := execPlan(b.quick)
	rep.execSamples = samples
	for i, c := range cells {
		logf("time to exec %d/%d: %s", i+1, len(cells), c.key())
		if err := b.measureExec(ctx, id, c, samples, wantBaseline(c)); err != nil {
			return err
		}
		rep.exec = append(rep.exec, c)
	}
	return b.setRTT(viaEmulator, 0)
}

// runFleet starts the fleet under the documented quotas, then with
// CreateSession's quota raised, then polls through a simulated hour.
func (b *bench) runFleet(ctx context.Context, rep *report, size int, speed float64) error {
	n, scale, restartDelay := 1000, 20.0, 5*time.Second
	docAttempts := 100 // until every instance has started
	if b.quick {
		n, scale, docAttempts = 50, 720, 1
	}
	if size > 0 {
		n = size
	}
	if speed > 0 {
		scale = speed
	}
	rec := newRecorder(3600)
	logf("fleet: %d instances", n)
	fleet, err := b.newFleet(n, rec)
	if err != nil {
		return err
	}
	defer closeFleet(fleet)
	if err := b.setRTT(viaEmulator, 0); err != nil {
		return err
	}

	// 1. The documented quotas, CreateSession 10 a second.
	if err := b.setQuotas(1, documentedSessionTPS); err != nil {
		return err
	}
	docs := &fleetStart{name: "documented quotas", instances: n, sessionTPS: documentedSessionTPS, attempts: docAttempts}
	logf("fleet: start under the documented quotas (CreateSession %d/s)", documentedSessionTPS)
	if err := b.startFleet(ctx, docs, fleet, restartDelay); err != nil {
		return err
	}
	rep.fleetStarts = append(rep.fleetStarts, docs)

	// 2. A fresh fleet with CreateSession's quota raised to an assumed,
	// modest increase: enough for the fleet's sessions within the
	// start-up deadline.
	closeFleet(fleet)
	fleet2, err := b.newFleet(n, rec)
	if err != nil {
		return err
	}
	defer closeFleet(fleet2)
	if err := b.emu.setQuota(opSession, raisedSessionTPS); err != nil {
		return err
	}
	raised := &fleetStart{name: "CreateSession quota raised", instances: n, sessionTPS: raisedSessionTPS, attempts: 100}
	logf("fleet: start with CreateSession at %d/s", raisedSessionTPS)
	if err := b.startFleet(ctx, raised, fleet2, restartDelay); err != nil {
		return err
	}
	rep.fleetStarts = append(rep.fleetStarts, raised)
	rep.fleetRestartDelay = restartDelay

	logf("fleet: a simulated hour of polling at %.0fx", scale)
	if rep.fleetHour, err = b.pollHour(ctx, fleet2, rec, scale); err != nil {
		return err
	}
	return b.setQuotas(0, 0)
}

// measureRoots times loading the roots rolesenv is given in fresh
// processes, by way (x509: crypto/x509's system pool; index:
// internal/sysroots, what rolesenv does).
func (b *bench) measureRoots(ctx context.Context, n int, way string) (sample, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var s sample
	for range n {
		cmd := exec.CommandContext(ctx, self, "-roots-probe", way)
		cmd.Env = b.baseEnv(credStatic, trustSystem)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("roots probe: %v", err)
		}
		var ns int64
		if _, err := fmt.Sscan(string(out), &ns); err != nil {
			return nil, fmt.Errorf("roots probe: %v", err)
		}
		s = append(s, time.Duration(ns))
	}
	return s, nil
}
