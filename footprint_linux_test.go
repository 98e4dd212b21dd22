package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

func init() {
	// dropbinary: print the binary's resident kB before dropBinaryPages,
	// after it, after some work (which runs code and reads data that
	// were dropped), after a second call (as after a check), and what
	// the work computed.
	testChildModes["dropbinary"] = func([]string) int {
		var kB [4]int64
		kB[0] = binaryRSS()
		n, err := dropBinaryPages()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		kB[1] = binaryRSS()
		sum := sha256.Sum256([]byte("rolesenv"))
		j, err := json.Marshal(map[string]string{"sum": fmt.Sprintf("%x", sum[:4])})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		kB[2] = binaryRSS()
		if _, err := dropBinaryPages(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		kB[3] = binaryRSS()
		fmt.Printf("%d %d %d %d %d %s\n", n, kB[0], kB[1], kB[2], kB[3], j)
		return 0
	}
}

// binaryRSS is the resident kB of the mappings dropBinaryPages may drop.
func binaryRSS() int64 {
	exe, _ := os.Readlink("/proc/self/exe")
	smaps, _ := os.ReadFile("/proc/self/smaps")
	var kB int64
	in := false
	for line := range bytes.Lines(smaps) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if _, ok := parseMapsHeader(f, exe); ok {
			in = true
			continue
		}
		if strings.Contains(f[0], "-") {
			in = false
		}
		if in && f[0] == "Rss:" && len(f) > 1 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			kB += n
		}
	}
	return kB
}

// TestDropBinaryPages: in a process of its own, dropBinaryPages advises
// the binary's read-only mappings, their resident pages go down, the
// process goes on running code and reading data from them, and a second
// call drops what the work mapped again.
func TestDropBinaryPages(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("rolesenv-testchild", "dropbinary")
	cmd.Env = testenv.SafeEnv(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rolesenv-testchild dropbinary: %v", err)
	}
	t.Logf("mappings, kB before, after, after work, after again: %s", out)
	var n int
	var kB [4]int64
	var j string
	if _, err := fmt.Sscan(string(out), &n, &kB[0], &kB[1], &kB[2], &kB[3], &j); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if n == 0 {
		t.Fatalf("no mapping of the binary was advised (output %q)", out)
	}
	if kB[1] >= kB[0] {
		t.Errorf("the binary's read-only mappings: %d kB resident before the drop, %d kB after; want fewer after", kB[0], kB[1])
	}
	// The second drop is measured against the first reading, not against
	// the reading just before it: the runtime's other threads (the
	// collector, the race detector's) fault pages back in meanwhile.
	if kB[3] >= kB[0] {
		t.Errorf("the second drop: %d kB resident after it, %d kB before the first; want fewer after", kB[3], kB[0])
	}
	sum := sha256.Sum256([]byte("rolesenv"))
	if want := fmt.Sprintf(`{"sum":"%x"}`, sum[:4]); j != want {
		t.Errorf("after the drop the child computed %s, want %s", j, want)
	}
}

// TestReadOnlyMappings: only private mappings of the binary that cannot
// be written and hold no anonymous page are chosen.
func TestReadOnlyMappings(t *testing.T) {
	t.Parallel()
	smaps := `00400000-00c00000 r-xp 00000000 fd:01 12 /usr/bin/rolesenv
Rss:                 100 kB
Anonymous:             0 kB
00c00000-01000000 r--p 00800000 fd:01 12 /usr/bin/rolesenv
Anonymous:             0 kB
01000000-01010000 r--p 00c00000 fd:01 12 /usr/bin/rolesenv
Anonymous:             8 kB
01010000-01020000 rw-p 00c10000 fd:01 12 /usr/bin/rolesenv
Anonymous:             0 kB
01020000-01030000 r--s 00000000 fd:01 12 /usr/bin/rolesenv
Anonymous:             0 kB
01030000-01040000 r-xp 00000000 fd:01 13 /usr/bin/other
Anonymous:             0 kB
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
Anonymous:             4 kB
`
	got := readOnlyMappings([]byte(smaps), "/usr/bin/rolesenv")
	want := []mapping{{0x400000, 0xc00000}, {0xc00000, 0x1000000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("readOnlyMappings = %x, want %x", got, want)
	}
}
