package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// overhead is the wrapper's cost with nothing to resolve.
type overhead struct {
	bare, once, watching sample
	binarySize           int64
	initTime             time.Duration // package initialisation, GODEBUG=inittrace
	init                 initStats     // of the run with the median time
	initRuns             []initStats   // every run, for the costs per package
}

// initStats is what GODEBUG=inittrace reports for one start: the time and
// heap that package initialisation takes, and the package that allocates
// most.
type initStats struct {
	time     time.Duration
	bytes    int64
	top      string // the package that allocates most
	topBytes int64
	topTime  time.Duration
	pkgs     map[string]initPkg // by import path
}

// initPkg is one package's initialisation.
type initPkg struct {
	time  time.Duration
	bytes int64
}

// literalsFile is a template without references: what rolesenv costs when
// it only reads a file and starts the command.
func (b *bench) literalsFile() (string, error) {
	var src strings.Builder
	src.WriteString("# no references: literals only\n")
	for i := range 20 {
		fmt.Fprintf(&src, "LITERAL_%02d=value-%02d\n", i, i)
	}
	src.WriteString("QUOTED=\"a ${LITERAL_00} b\"\n")
	p := filepath.Join(b.dir, "literals.env")
	return p, os.WriteFile(p, []byte(src.String()), 0o600)
}

// measureOverhead runs the bare command, rolesenv --once and a watching
// rolesenv in turn, samples times each.
func (b *bench) measureOverhead(ctx context.Context, samples int) (*overhead, error) {
	file, err := b.literalsFile()
	if err != nil {
		return nil, err
	}
	env := b.baseEnv(credStatic, trustSystem)
	bare := []string{echoPath, "ready"}
	once := []string{b.rolesenv, "run", "--once", "--env-file", file, "--", echoPath, "ready"}
	watching := []string{b.rolesenv, "run", "--env-file", file, "--", echoPath, "ready"}
	o := &overhead{}
	for i := -1; i < samples; i++ { // -1: one round to warm up
		for _, r := range []struct {
			argv []string
			dst  *sample
		}{{bare, &o.bare}, {once, &o.once}, {watching, &o.watching}} {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			d, err := runOnce(sctx, r.argv, env)
			cancel()
			if err != nil {
				return nil, err
			}
			if i >= 0 {
				*r.dst = append(*r.dst, d)
			}
		}
	}
	if fi, err := os.Stat(b.rolesenv); err == nil {
		o.binarySize = fi.Size()
	}
	var runs []initStats
	for range 9 {
		st, err := initTime(ctx, b.rolesenv, env)
		if err != nil {
			return nil, err
		}
		runs = append(runs, st)
	}
	slices.SortFunc(runs, func(a, b initStats) int { return cmp.Compare(a.time, b.time) })
	o.init = runs[len(runs)/2]
	o.initTime = o.init.time
	o.initRuns = runs
	return o, nil
}

// initTime sums the package initialisation that the Go runtime reports
// for one `rolesenv version`: time and heap allocated.
func initTime(ctx context.Context, bin string, env []string) (initStats, error) {
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = append(slices.Clone(env), "GODEBUG=inittrace=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return initStats{}, fmt.Errorf("rolesenv version: %v", err)
	}
	return parseInitTrace(stderr.String()), nil
}

// parseInitTrace reads lines such as
// "init net/http @4.7 ms, 0.033 ms clock, 4712 bytes, 49 allocs".
func parseInitTrace(text string) initStats {
	st := initStats{pkgs: map[string]initPkg{}}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(strings.ReplaceAll(line, ",", ""))
		// init PKG @T ms D ms clock B bytes N allocs
		if len(f) < 10 || f[0] != "init" || f[5] != "ms" || f[6] != "clock" || f[8] != "bytes" {
			continue
		}
		ms, err1 := strconv.ParseFloat(f[4], 64)
		n, err2 := strconv.ParseInt(f[7], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		d := time.Duration(ms * float64(time.Millisecond))
		st.time += d
		st.bytes += n
		st.pkgs[f[1]] = initPkg{time: d, bytes: n}
		if n > st.topBytes {
			st.top, st.topBytes, st.topTime = f[1], n, d
		}
	}
	return st
}
