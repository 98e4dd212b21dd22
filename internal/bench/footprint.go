package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// footprint is a watching rolesenv measured from /proc.
type footprint struct {
	refs     int
	interval time.Duration
	window   time.Duration // how long it was measured

	maxRSS, hwm, anon, file int64 // kB
	maxAnon, maxFile        int64 // kB, in the sample of maxRSS
	minRSS, minFile         int64 // kB, the smallest sample: between checks
	binarySize              int64 // bytes
	threads                 int
	gc                      gcStats       // over the window (GODEBUG=gctrace=1)
	cpu                     time.Duration // over the window
	polls                   float64       // DescribeSecret calls / refs
	calls                   counts

	// Idle: --interval long enough that no check falls in the window;
	// the env file watched, or the template on standard input.
	idleWindow      time.Duration
	idle, idleStdin idleStat
}

// watchArgv is a watching rolesenv whose child reports that it runs, then
// stays.
func (b *bench) watchArgv(file string, interval time.Duration) []string {
	return []string{b.rolesenv, "run", "--env-file", file, "--interval", interval.String(),
		"--", "/bin/sh", "-c", "echo ready; exec sleep 100000"}
}

// measureFootprint runs a watching rolesenv with 50 references (Roles
// Anywhere credentials) polling every second, then one that is idle.
func (b *bench) measureFootprint(ctx context.Context, window, idleWindow time.Duration) (*footprint, error) {
	f := &footprint{refs: 50, interval: time.Second, window: window, idleWindow: idleWindow}
	if err := b.setRTT(viaEmulator, 0); err != nil {
		return nil, err
	}
	file, err := b.envFile(size50)
	if err != nil {
		return nil, err
	}
	env := b.baseEnv(credRA, trustSystem)
	if fi, err := os.Stat(b.rolesenv); err == nil {
		f.binarySize = fi.Size()
	}

	// gctrace: a line on standard error per collection, with the heap's
	// size before and after it and its goal.
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	s, err := startTimed(sctx, b.watchArgv(file, f.interval), append(slices.Clone(env), "GODEBUG=gctrace=1"))
	cancel()
	if err != nil {
		return nil, err
	}
	if err := b.emu.resetCalls(); err != nil {
		s.stop()
		return nil, err
	}
	first, err := readProc(s.cmd.Process.Pid)
	if err != nil {
		s.stop()
		return nil, err
	}
	last := first
	gc0 := parseGCTrace(s.stderr.String())
	deadline := time.Now().Add(window)
	tick := time.NewTicker(time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			tick.Stop()
			s.stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
		st, err := readProc(s.cmd.Process.Pid)
		if err != nil {
			tick.Stop()
			s.stop()
			return nil, fmt.Errorf("rolesenv ended while watching: %v: %s", err, lastLine(s.stderr.String()))
		}
		if st.rssKB > f.maxRSS {
			f.maxRSS, f.maxAnon, f.maxFile = st.rssKB, st.anonKB, st.fileKB
		}
		if f.minRSS == 0 || st.rssKB < f.minRSS {
			f.minRSS, f.minFile = st.rssKB, st.fileKB
		}
		last = st
	}
	tick.Stop()
	f.hwm, f.anon, f.file, f.threads = last.hwmKB, last.anonKB, last.fileKB, last.threads
	f.cpu = last.cpu - first.cpu
	f.gc = parseGCTrace(s.stderr.String())
	f.gc.n -= gc0.n
	if f.calls, err = b.emu.calls(); err != nil {
		s.stop()
		return nil, err
	}
	f.polls = float64(f.calls.Calls[opDescribe]) / float64(f.refs)
	s.stop()

	// Idle: a check at a random point of the first hour, so almost surely
	// none in the window. Once with the env file watched (a look every
	// second), once with the template on standard input (never re-read).
	if f.idle, err = b.measureIdle(ctx, b.watchArgv(file, time.Hour), env, nil, idleWindow); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if f.idleStdin, err = b.measureIdle(ctx, b.watchArgv("-", time.Hour), env, data, idleWindow); err != nil {
		return nil, err
	}
	return f, nil
}

// gcStats is what GODEBUG=gctrace=1 reported: how many collections, and
// the last one's live heap and goal (MB, as the runtime rounds them).
type gcStats struct {
	n          int
	live, goal int
}

// parseGCTrace reads lines such as "gc 22 @31.664s 0%: 0.074+0.87+0.002
// ms clock, 0.14+0.020/0.32/0.84+0.004 ms cpu, 5->5->2 MB, 6 MB goal, 0 MB
// stacks, 0 MB globals, 2 P".
func parseGCTrace(text string) gcStats {
	var st gcStats
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		f := strings.Split(line, ", ")
		if len(f) < 4 {
			continue
		}
		sizes, ok1 := strings.CutSuffix(f[2], " MB")
		goal, ok2 := strings.CutSuffix(f[3], " MB goal")
		parts := strings.Split(sizes, "->")
		if !ok1 || !ok2 || len(parts) != 3 {
			continue
		}
		live, err1 := strconv.Atoi(parts[2])
		g, err2 := strconv.Atoi(goal)
		if err1 != nil || err2 != nil {
			continue
		}
		st.n++
		st.live, st.goal = live, g
	}
	return st
}

// idleStat is a watching rolesenv between checks.
type idleStat struct {
	cpu, ticks time.Duration
	wakeups    int64
	checks     int64 // DescribeSecret calls seen (should be 0)
	rssKB      int64
}

// measureIdle starts a watching rolesenv, lets start-up settle, and reads
// /proc over window.
func (b *bench) measureIdle(ctx context.Context, argv, env []string, stdin []byte, window time.Duration) (idleStat, error) {
	var st idleStat
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	s, err := startTimedIn(sctx, argv, env, in)
	cancel()
	if err != nil {
		return st, err
	}
	defer s.stop()
	wait := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := wait(2 * time.Second); err != nil {
		return st, err
	}
	if err := b.emu.resetCalls(); err != nil {
		return st, err
	}
	a, err := readProc(s.cmd.Process.Pid)
	if err != nil {
		return st, err
	}
	if err := wait(window); err != nil {
		return st, err
	}
	z, err := readProc(s.cmd.Process.Pid)
	if err != nil {
		return st, err
	}
	c, err := b.emu.calls()
	if err != nil {
		return st, err
	}
	return idleStat{cpu: z.cpu - a.cpu, ticks: z.ticksCPU - a.ticksCPU, wakeups: z.wakeups - a.wakeups,
		checks: c.Calls[opDescribe], rssKB: z.rssKB}, nil
}
