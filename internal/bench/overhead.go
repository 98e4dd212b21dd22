package main

import (
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
	var inits sample
	for range 5 {
		d, err := initTime(ctx, b.rolesenv, env)
		if err != nil {
			return nil, err
		}
		inits = append(inits, d)
	}
	o.initTime = inits.median()
	return o, nil
}

// initTime is the sum of the package initialisation times that the Go
// runtime reports for one `rolesenv version`.
func initTime(ctx context.Context, bin string, env []string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = append(slices.Clone(env), "GODEBUG=inittrace=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("rolesenv version: %v", err)
	}
	// "init net/http @4.7 ms, 0.033 ms clock, 4712 bytes, 49 allocs"
	var total float64
	for _, line := range strings.Split(stderr.String(), "\n") {
		_, rest, ok := strings.Cut(line, " ms, ")
		if !strings.HasPrefix(line, "init ") || !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != "ms" {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			total += v
		}
	}
	return time.Duration(total * float64(time.Millisecond)), nil
}
