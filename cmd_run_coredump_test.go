//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

func init() {
	// setcore N COMMAND ARGS...: set the soft RLIMIT_CORE to N bytes,
	// then exec COMMAND (found on the PATH).
	testChildModes["setcore"] = func(args []string) int {
		var n uint64
		fmt.Sscan(args[0], &n)
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lim); err != nil || lim.Max < n {
			fmt.Println("setcore: cannot raise RLIMIT_CORE to", n, err)
			return 3
		}
		lim.Cur = n
		if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
			fmt.Println("setcore:", err)
			return 3
		}
		path, err := exec.LookPath(args[1])
		if err != nil {
			fmt.Println("setcore:", err)
			return 3
		}
		err = syscall.Exec(path, args[1:], os.Environ())
		fmt.Println("setcore:", err)
		return 3
	}
	// corelimit: print "core=N dumpable=D parentcore=LIMITS" (the soft
	// core limit and dumpable flag of this process, and the "Max core
	// file size" line of its parent's /proc limits) and exit 0.
	testChildModes["corelimit"] = func([]string) int {
		var lim syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_CORE, &lim)
		d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		parent := "unknown"
		if f, err := os.Open(fmt.Sprintf("/proc/%d/limits", os.Getppid())); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "Max core file size") {
					parent = strings.Join(strings.Fields(strings.TrimPrefix(sc.Text(), "Max core file size")), " ")
				}
			}
			f.Close()
		}
		fmt.Printf("core=%d dumpable=%d parentcore=%s\n", lim.Cur, d, parent)
		return 0
	}
}

// TestRunCoreLimit: rolesenv run lowers its own soft core limit to 0
// (its memory holds secrets) and gives the command the limit rolesenv
// was started with, both when it supervises the command and when --once
// replaces rolesenv with it.
func TestRunCoreLimit(t *testing.T) {
	t.Parallel() // rolesenv runs as a subprocess with its own environment
	const limit = 1 << 20
	var hard syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &hard); err != nil || hard.Max < limit {
		t.Skipf("the hard RLIMIT_CORE (%d) is below %d", hard.Max, limit)
	}
	file := writeEnvFile(t, "GREETING=hello\n")
	for _, tc := range []struct {
		name       string
		once       []string
		parentCore string
	}{
		{"supervised", nil, "0 unlimited bytes"},
		{"once", []string{"--once"}, ""}, // the parent is the test's wrapper
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"setcore", fmt.Sprint(limit), "rolesenv", "run", "--env-file", file}, tc.once...)
			args = append(args, "--", "rolesenv-testchild", "corelimit")
			cmd := exec.Command("rolesenv-testchild", args...)
			cmd.Env = testenv.SafeEnv(t, "AWS_ENDPOINT_URL=http://127.0.0.1:1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			want := fmt.Sprintf("core=%d dumpable=1 ", limit)
			if !strings.Contains(string(out), want) {
				t.Errorf("the command reported %q, want %q: its core limit must be rolesenv's original", out, want)
			}
			if tc.parentCore != "" && !strings.Contains(string(out), "parentcore="+tc.parentCore+"\n") {
				t.Errorf("the command reported %q, want rolesenv's own core limit to be %q", out, tc.parentCore)
			}
		})
	}
}
