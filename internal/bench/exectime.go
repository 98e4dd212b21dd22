package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rolesenv/rolesenv/signer"
)

// size is one template: distinct secrets and parameters, one variable each.
type size struct {
	name            string
	secrets, params int
}

func (s size) refs() int { return s.secrets + s.params }

var (
	size1   = size{"1", 1, 0}
	size10  = size{"10", 10, 0}
	size50  = size{"50", 50, 0}
	size200 = size{"200", 200, 0}
	// sizeMix is a typical service's template: secrets and SecureString
	// parameters together.
	sizeMix = size{"mix 40+10", 40, 10}
)

// envFile writes the template of s and returns its path.
func (b *bench) envFile(s size) (string, error) {
	var src strings.Builder
	src.WriteString("# rolesenv benchmark template\nAPP_MODE=bench\n")
	for i := range s.secrets {
		fmt.Fprintf(&src, "S%03d=sm://%s\n", i, secretName(i))
	}
	for i := range s.params {
		fmt.Fprintf(&src, "P%02d=ssm://%s\n", i, paramName(i))
	}
	p := filepath.Join(b.dir, fmt.Sprintf("refs-%d-%d.env", s.secrets, s.params))
	return p, os.WriteFile(p, []byte(src.String()), 0o600)
}

// expectedCalls is what BatchAuto should cost: GetSecretValue each when a
// region has at most 10 secrets, else BatchGetSecretValue 20 a call;
// GetParameters 10 names a call; CreateSession once with Roles Anywhere.
func expectedCalls(s size, c creds) int {
	n := (s.params + 9) / 10
	if s.secrets <= 10 {
		n += s.secrets
	} else {
		n += (s.secrets + 19) / 20
	}
	if c == credRA {
		n++
	}
	return n
}

// execCell is one measured configuration of time to exec.
type execCell struct {
	size  size
	mode  latencyMode
	rtt   time.Duration
	creds creds
	trust trust

	rolesenv, floor, baseline sample
	// CPU time (user + system) of each rolesenv start, and of the floor
	// program's (a fresh Go process doing the floor's round).
	rolesenvCPU, floorCPU sample
	calls                 []int64 // API calls of each rolesenv start
	callsByOp             map[string]int64
}

func (c *execCell) key() string {
	return fmt.Sprintf("%s/%s/%v/%s/%s", c.size.name, c.mode, c.rtt, c.creds, c.trust)
}

// baselineRuns is how many baseline samples to take: as many as the
// others when one takes at most about 0.4 s, fewer when it is slower, so
// that the baselines of one cell take about 6 s; at least one.
func baselineRuns(s size, rtt time.Duration, samples int) int {
	est := time.Duration(s.refs()) * (rtt + 2*time.Millisecond)
	if est <= 0 {
		return samples
	}
	return max(1, min(samples, int(6*time.Second/est)))
}

// measureExec runs rolesenv, the floor and the baseline in turn, samples
// times each (fewer baselines when they are slow), so that a change in the
// machine's load touches all three alike.
func (b *bench) measureExec(ctx context.Context, id *signer.FileIdentity, c *execCell, samples int, withBaseline bool) error {
	if err := b.setRTT(c.mode, c.rtt); err != nil {
		return err
	}
	file, err := b.envFile(c.size)
	if err != nil {
		return err
	}
	argv := []string{b.rolesenv, "run", "--once", "--env-file", file, "--", echoPath, "ready"}
	env := b.baseEnv(c.creds, c.trust)
	nBase := 0
	if withBaseline {
		nBase = baselineRuns(c.size, c.rtt, samples)
		if b.quick {
			nBase = 1
		}
	}
	c.callsByOp = map[string]int64{}
	// One start before measuring: the binary and the files in the page
	// cache, the emulator's code warm.
	if _, err := runOnce(ctx, argv, env); err != nil {
		return fmt.Errorf("rolesenv %s: %w", c.key(), err)
	}
	for i := range samples {
		if err := b.emu.resetCalls(); err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		d, cpu, err := runOnceCPU(sctx, argv, env)
		cancel()
		if err != nil {
			return fmt.Errorf("rolesenv %s: %w", c.key(), err)
		}
		c.rolesenvCPU = append(c.rolesenvCPU, cpu)
		cnt, err := b.emu.calls()
		if err != nil {
			return err
		}
		c.rolesenv = append(c.rolesenv, d)
		c.calls = append(c.calls, cnt.total())
		for op, n := range cnt.Calls {
			c.callsByOp[op] += n
		}

		if err := b.floorProcess(ctx, c); err != nil {
			return err
		}
		clients := []struct {
			name    string
			run     func(context.Context, signer.IdentitySource, creds, trust, int, int) (time.Duration, error)
			timeout time.Duration
			dst     *sample
		}{{"floor", b.floor, time.Minute, &c.floor}, {"baseline", b.baseline, 5 * time.Minute, &c.baseline}}
		for k, cl := range clients {
			if k == 1 && i >= nBase {
				break
			}
			sctx, cancel := context.WithTimeout(ctx, cl.timeout)
			d, err := cl.run(sctx, id, c.creds, c.trust, c.size.secrets, c.size.params)
			cancel()
			if err != nil {
				return fmt.Errorf("%s %s: %w", cl.name, c.key(), err)
			}
			*cl.dst = append(*cl.dst, d)
		}
	}
	return nil
}

// execPlan lists the cells to measure: every size at 0 ms, at 20 ms both
// ways and at 100 ms through Toxiproxy (the realistic way: handshakes cost
// round trips), for both kinds of credentials; then the target cell with
// AWS_CA_BUNDLE, and over plain HTTP.
func execPlan(quick bool) (cells []*execCell, samples int) {
	sizes := []size{size1, size10, size50, size200, sizeMix}
	type lat struct {
		m   latencyMode
		rtt time.Duration
	}
	lats := []lat{{viaEmulator, 0}, {viaEmulator, 20 * time.Millisecond}, {viaToxiproxy, 20 * time.Millisecond}, {viaToxiproxy, 100 * time.Millisecond}}
	samples = 8
	if quick {
		sizes = []size{size1, size50}
		lats = []lat{{viaEmulator, 0}, {viaEmulator, 20 * time.Millisecond}, {viaToxiproxy, 20 * time.Millisecond}}
		samples = 4
	}
	for _, cr := range []creds{credStatic, credRA} {
		for _, s := range sizes {
			for _, l := range lats {
				if quick && l.m == viaToxiproxy && s != size50 {
					continue
				}
				cells = append(cells, &execCell{size: s, mode: l.m, rtt: l.rtt, creds: cr})
			}
		}
	}
	for _, cr := range []creds{credStatic, credRA} {
		cells = append(cells, &execCell{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: cr, trust: trustBundle})
	}
	// The target cells over plain HTTP, both ways of adding latency.
	for _, cr := range []creds{credStatic, credRA} {
		for _, m := range []latencyMode{viaToxiproxy, viaEmulator} {
			cells = append(cells, &execCell{size: size50, mode: m, rtt: 20 * time.Millisecond, creds: cr, trust: trustPlain})
		}
	}
	return cells, samples
}

// wantBaseline says which cells measure the baseline: at 0 and 20 ms with
// the emulator's latency, every size; through Toxiproxy, the target cell
// (50 at 20 ms). The baseline is one round trip per variable: at 100 ms
// that is 5 to 20 s a sample for nothing the 20 ms cells do not show.
func wantBaseline(c *execCell) bool {
	return c.trust == trustSystem && (c.mode == viaEmulator || (c.size == size50 && c.rtt == 20*time.Millisecond))
}
