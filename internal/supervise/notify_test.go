package supervise

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdNotify: a restart is bracketed by RELOADING=1 (with
// MONOTONIC_USEC) and READY=1, each with a STATUS= line.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func() string {
		select {
		case m := <-msgs:
			return m
		case <-time.After(deadline):
			t.Fatal("no notification")
		}
		return ""
	}
	h := startHarness(t, Config{NotifySocket: sock}, childEnv("hang", "GEN=0"))
	h.out.until("ready")
	h.update(childEnv("hang", "GEN=1"), "sm://prod/db rotated")
	reloading := next()
	if !strings.HasPrefix(reloading, "RELOADING=1\nMONOTONIC_USEC=") || !strings.Contains(reloading, "\nSTATUS=environment changed; restarting") {
		t.Errorf("first notification %q", reloading)
	}
	ready := next()
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=running ") || !strings.Contains(ready, "restarted 1 times") {
		t.Errorf("second notification %q", ready)
	}
}
