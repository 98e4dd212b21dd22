package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The floor's CPU time: the floor program (internal/bench/floorcmd), a
// Go process that starts, does the floor's round once and exits, built
// once per run like rolesenv. Its user + system time is what a minimal
// Go client of the SDK must spend, a process start included, to compare
// with rolesenv's.

// buildFloorCmd builds the floor program into dir.
func buildFloorCmd(dir string) (string, error) {
	out := filepath.Join(dir, "floorcmd")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/rolesenv/rolesenv/internal/bench/floorcmd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("failed to build the floor program: %w", err)
	}
	return out, nil
}

// floorProcess runs the floor program once for c and records its CPU
// time. A run that fails is tried once more (a fresh process: the sample
// is as good), so that one connection the proxies drop between cells
// does not end the benchmark.
func (b *bench) floorProcess(ctx context.Context, c *execCell) error {
	if b.floorCmd == "" {
		return nil
	}
	err := b.floorProcessOnce(ctx, c)
	if err != nil {
		b.log("%v; trying once more", err)
		err = b.floorProcessOnce(ctx, c)
	}
	return err
}

func (b *bench) floorProcessOnce(ctx context.Context, c *execCell) error {
	ra, sm, ssm := b.urls(c.trust)
	argv := []string{"-sm", sm, "-ssm", ssm, "-ca", b.emu.CAFile,
		"-secrets", strconv.Itoa(c.size.secrets), "-params", strconv.Itoa(c.size.params)}
	if c.creds == credRA {
		argv = append(argv, "-ra", ra, "-cert", b.emu.CertFile, "-key", b.emu.KeyFile,
			"-trust-anchor", b.emu.TrustAnchorARN, "-profile", b.emu.ProfileARN, "-role", b.emu.RoleARN)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(sctx, b.floorCmd, argv...)
	cmd.Env = []string{"AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=" + b.emu.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + b.emu.SecretKey}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if _, err := cmd.Output(); err != nil {
		return fmt.Errorf("floor program %s: %v: %s", c.key(), err, lastLine(stderr.String()))
	}
	c.floorCPU = append(c.floorCPU, cpuTime(cmd.ProcessState))
	return nil
}
