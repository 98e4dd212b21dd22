package supervise

import (
	"context"
	"errors"
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

func TestLookupUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	u, err := LookupUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if itoaU(u.UID) != nobody.Uid || itoaU(u.GID) != nobody.Gid || len(u.Groups) == 0 || u.Groups[0] != u.GID {
		t.Errorf("nobody = %+v; passwd says uid %s gid %s", u, nobody.Uid, nobody.Gid)
	}
	if u, err := LookupUser("nobody:0"); err != nil || u.GID != 0 || u.Groups[0] != 0 {
		t.Errorf("nobody:0 = %+v, %v", u, err)
	}
	if u, err := LookupUser("4242:4343"); err != nil || u.UID != 4242 || u.GID != 4343 {
		t.Errorf("4242:4343 = %+v, %v", u, err)
	}
	for _, bad := range []string{"", ":", "nobody:", "no-such-user-here", "nobody:no-such-group-here", "4242"} {
		_, err := LookupUser(bad)
		var ue *UserError
		if !errors.As(err, &ue) || !ue.Config() {
			t.Errorf("LookupUser(%q) = %v, want a *UserError", bad, err)
		}
	}
}

func TestLookupUserNotRoot(t *testing.T) {
	defer func(f func() int) { geteuid = f }(geteuid)
	geteuid = func() int { return 1000 }
	_, err := LookupUser("nobody")
	var ue *UserError
	if !errors.As(err, &ue) || !errors.Is(err, errNotRoot) || !strings.Contains(ue.Hint(), "root") {
		t.Errorf("got %v, want the not-root error with a hint", err)
	}
}

// TestRunAsUser runs the child as nobody and checks its ids.
func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := LookupUser("nobody")
	if err != nil {
		t.Skip(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := newInProcess(t, Config{Command: "/bin/sh", Args: []string{"-c", "id -u; id -g; id -G"}, User: u, Stdout: w})
	res, err := s.Run(context.Background(), []string{"PATH=/usr/bin:/bin"}, nil)
	w.Close()
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	out := readLines(t, r).rest()
	want := []string{itoaU(u.UID), itoaU(u.GID), itoaU(u.GID)}
	if strings.Join(out, ",") != strings.Join(want, ",") {
		t.Errorf("child ids %q, want %q", out, want)
	}
}

func itoaU(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
