package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// metricsVariant is one way to serve /metrics, built into its own binary.
type metricsVariant struct {
	name    string // for the table
	module  string // the library, module@version; "" for rolesenv's own text
	overlay string // its file under internal/bench/metricslib
}

// The variants compared: rolesenv's own text exposition (internal/metrics,
// no dependency) against a well-kept Prometheus client and a lighter one.
var metricsVariants = []metricsVariant{
	{name: "internal/metrics (hand-written text)"},
	{name: "prometheus/client_golang", module: "github.com/prometheus/client_golang@v1.25.0", overlay: "promclient.go"},
	{name: "VictoriaMetrics/metrics", module: "github.com/VictoriaMetrics/metrics@v1.45.0", overlay: "victoria.go"},
}

// metricsRow is one variant measured.
type metricsRow struct {
	variant    metricsVariant
	binarySize int64
	init       initStats // median of the runs by time
	initPkgs   int
	off, on    int64 // RSS (kB), the largest sample, watching 50 references: metrics off, and on and scraped
	onAnon     int64
	scrapeKB   float64 // one scrape's size
}

type metricsReport struct {
	rows   []*metricsRow
	window time.Duration
}

// measureMetrics builds each variant as `make build` does and measures
// what it costs: package initialisation, the binary, and the resident
// memory of a rolesenv watching 50 references, without and with
// --metrics-listen (scraped every second).
func (b *bench) measureMetrics(ctx context.Context, window time.Duration) (*metricsReport, error) {
	rep := &metricsReport{window: window}
	for _, v := range metricsVariants {
		bin, err := buildMetricsVariant(ctx, b.dir, v)
		if err != nil {
			logf("metrics: %s: %v (left out)", v.name, err)
			continue
		}
		row := &metricsRow{variant: v}
		if fi, err := os.Stat(bin); err == nil {
			row.binarySize = fi.Size()
		}
		env := b.baseEnv(credRA, trustSystem)
		var runs []initStats
		for range 11 {
			st, err := initTime(ctx, bin, env)
			if err != nil {
				return nil, err
			}
			runs = append(runs, st)
		}
		slices.SortFunc(runs, func(a, b initStats) int { return cmp.Compare(a.time, b.time) })
		row.init = runs[len(runs)/2]
		row.initPkgs, _ = initPackages(ctx, bin, env)
		if row.off, _, _, err = b.watchRSS(ctx, bin, false, window); err != nil {
			return nil, err
		}
		if row.on, row.onAnon, row.scrapeKB, err = b.watchRSS(ctx, bin, true, window); err != nil {
			return nil, err
		}
		rep.rows = append(rep.rows, row)
	}
	return rep, nil
}

// buildMetricsVariant builds rolesenv with v's /metrics: the tree as it
// is, or with v's file added to package main by an overlay and its
// library required by a go.mod of its own (-modfile), so that the
// project's go.mod never requires it.
func buildMetricsVariant(ctx context.Context, dir string, v metricsVariant) (string, error) {
	vdir := filepath.Join(dir, "metrics-"+strings.NewReplacer("/", "-", " ", "-", "(", "", ")", "").Replace(v.name))
	if err := os.MkdirAll(vdir, 0o700); err != nil {
		return "", err
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	out := filepath.Join(vdir, "rolesenv")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}
	if v.module != "" {
		extra, err := variantBuildFlags(ctx, root, vdir, v)
		if err != nil {
			return "", err
		}
		args = append(args, extra...)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, msg)
	}
	return out, nil
}

// variantBuildFlags writes v's go.mod (the project's, plus the library)
// and overlay, and returns the flags that use them.
func variantBuildFlags(ctx context.Context, root, vdir string, v metricsVariant) ([]string, error) {
	mod, sum := filepath.Join(vdir, "go.mod"), filepath.Join(vdir, "go.sum")
	for src, dst := range map[string]string{"go.mod": mod, "go.sum": sum} {
		data, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			return nil, err
		}
	}
	get := exec.CommandContext(ctx, "go", "get", "-modfile="+mod, v.module)
	get.Dir = root
	if msg, err := get.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go get %s: %v: %s", v.module, err, msg)
	}
	src, err := os.ReadFile(filepath.Join(root, "internal", "bench", "metricslib", v.overlay))
	if err != nil {
		return nil, err
	}
	// The file carries "//go:build ignore" so that nothing else builds it.
	text := strings.Replace(string(src), "//go:build ignore\n", "", 1)
	file := filepath.Join(vdir, "zz_metrics_variant.go")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		return nil, err
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "zz_metrics_variant.go"): file}})
	if err != nil {
		return nil, err
	}
	ov := filepath.Join(vdir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o600); err != nil {
		return nil, err
	}
	return []string{"-modfile=" + mod, "-overlay=" + ov}, nil
}

// moduleRoot is the directory of the project's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// initPackages counts the packages whose initialisation the runtime
// reports.
func initPackages(ctx context.Context, bin string, env []string) (int, error) {
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = append(slices.Clone(env), "GODEBUG=inittrace=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "init ") {
			n++
		}
	}
	return n, nil
}

// watchRSS runs bin watching 50 references (checks every second) for
// window, with --metrics-listen when on (scraped every second), and
// returns the largest RSS sample and the last private part (kB), and the
// size of a scrape.
func (b *bench) watchRSS(ctx context.Context, bin string, on bool, window time.Duration) (rss, anon int64, scrapeKB float64, err error) {
	if err := b.setRTT(viaEmulator, 0); err != nil {
		return 0, 0, 0, err
	}
	file, err := b.envFile(size50)
	if err != nil {
		return 0, 0, 0, err
	}
	argv := []string{bin, "run", "--env-file", file, "--interval", "1s"}
	if on {
		argv = append(argv, "--metrics-listen", "0")
	}
	argv = append(argv, "--", "/bin/sh", "-c", "echo ready; exec sleep 100000")
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	s, err := startTimed(sctx, argv, b.baseEnv(credRA, trustSystem))
	cancel()
	if err != nil {
		return 0, 0, 0, err
	}
	defer s.stop()
	url := ""
	if on {
		if url = metricsURLIn(s.stderr.String()); url == "" {
			return 0, 0, 0, fmt.Errorf("no metrics URL in: %s", lastLine(s.stderr.String()))
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for deadline := time.Now().Add(window); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		case <-tick.C:
		}
		if url != "" {
			n, err := scrapeSize(ctx, url)
			if err != nil {
				return 0, 0, 0, err
			}
			scrapeKB = float64(n) / 1024
		}
		st, err := readProc(s.cmd.Process.Pid)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("rolesenv ended while watching: %v: %s", err, lastLine(s.stderr.String()))
		}
		rss, anon = max(rss, st.rssKB), st.anonKB
	}
	return rss, anon, scrapeKB, nil
}

// metricsURLIn finds the endpoint in rolesenv's "serving metrics" line.
func metricsURLIn(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "serving metrics") {
			continue
		}
		if _, u, ok := strings.Cut(line, "url="); ok {
			u, _, _ = strings.Cut(u, " ")
			return u
		}
	}
	return ""
}

func scrapeSize(ctx context.Context, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape: %s", resp.Status)
	}
	return io.Copy(io.Discard, resp.Body)
}

func (r *report) writeMetrics(p printer) {
	m := r.metrics
	if m == nil || len(m.rows) == 0 {
		return
	}
	p("## Metrics endpoint: what a library would cost\n\n")
	p("Three builds of rolesenv, each as `make build` makes it (static, `-trimpath -ldflags '-s -w'`), differing only in what answers `/metrics`: rolesenv's own text exposition (internal/metrics, no dependency), and the same snapshot served through each library (a client_golang registry with one collector of const metrics and promhttp; VictoriaMetrics' writers). Package initialisation is `rolesenv version` under GODEBUG=inittrace=1 (median of 11): it is paid by every start, with or without `--metrics-listen`. Resident memory is `rolesenv run --env-file refs-50.env --interval 1s` with Roles Anywhere credentials, the largest VmRSS sample over %v, without and with `--metrics-listen` (scraped every second).\n\n", m.window)
	p("| /metrics by | binary | package init: time, heap, packages | RSS watching 50 references: metrics off / on (private) | a scrape |\n| --- | --- | --- | --- | --- |\n")
	for _, row := range m.rows {
		p("| %s | %.2f MB | %s ms, %.0f kB, %d packages | %.1f MB / %.1f MB (%.1f MB) | %.1f kB |\n",
			row.variant.name, float64(row.binarySize)/1e6, ms(row.init.time), float64(row.init.bytes)/1024, row.initPkgs,
			float64(row.off)/1024, float64(row.on)/1024, float64(row.onAnon)/1024, row.scrapeKB)
	}
	own := m.rows[0]
	p("\nThe heap and the packages that initialisation reports do not vary from run to run; its time, a few milliseconds in all, moves by more than the differences between the builds when other work runs on the machine. ")
	p("rolesenv uses internal/metrics: no dependency, no package to initialise (a test checks that its package is not in the trace), nothing allocated and no goroutine until `--metrics-listen` is given, and the smallest binary. client_golang's registry and text encoder bring protobuf, prometheus/common and procfs into every start; VictoriaMetrics' writers cost little, but write the same lines that internal/metrics writes in about 200.\n\n")
	verdict := "within"
	if own.on > 20*1024 {
		verdict = "over"
	}
	p("Footprint target: a watching rolesenv with metrics on, 50 references, within 20 MB resident: %.1f MB, %s (metrics off: %.1f MB; turning them on and scraping every second adds %+.1f MB; see *Supervisor footprint* for what the rest is).\n\n",
		float64(own.on)/1024, verdict, float64(own.off)/1024, float64(own.on-own.off)/1024)
}

// metricsTargetRow is the footprint target with metrics on.
func (r *report) metricsTargetRow() (targetRow, bool) {
	if r.metrics == nil || len(r.metrics.rows) == 0 || r.metrics.rows[0].variant.module != "" {
		return targetRow{}, false
	}
	own := r.metrics.rows[0]
	on, off := float64(own.on)/1024, float64(own.off)/1024
	return targetRow{
		target:   "watching 50 references with `--metrics-listen`, scraped every second: RSS at most 20 MB",
		measured: fmt.Sprintf("%.1f MB (%.1f MB with metrics off, the same build and run)", on, off),
		ok:       on <= 20, margin: fmt.Sprintf("%.1f MB %s", math.Abs(on-20), map[bool]string{true: "to spare", false: "over"}[on <= 20]),
		why: fmt.Sprintf("Metrics add %+.1f MB; the rest is the watching rolesenv's own footprint (the target above).", on-off),
	}, true
}
