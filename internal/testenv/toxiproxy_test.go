package testenv

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echo starts a TCP server on loopback that sends back what it reads.
func echo(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends a line through the proxy and reads it back within wait.
func roundTrip(t *testing.T, addr string, wait time.Duration) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping\n" {
		t.Fatalf("read %q through the proxy, want %q", buf, "ping\n")
	}
	return nil
}

func TestToxiproxy(t *testing.T) {
	x := StartToxiproxy(t, echo(t))
	const generous = 30 * time.Second
	if err := roundTrip(t, x.Addr, generous); err != nil {
		t.Fatalf("through the proxy without toxics: %v", err)
	}

	x.ResetPeer("reset")
	err := roundTrip(t, x.Addr, generous)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("with reset_peer: %v, want the connection reset", err)
	}
	x.Remove("reset")
	if err := roundTrip(t, x.Addr, generous); err != nil {
		t.Fatalf("after removing reset_peer: %v", err)
	}

	// Nothing comes back while the proxy stalls: the client's own
	// deadline ends the wait.
	x.Stall("stall")
	if err := roundTrip(t, x.Addr, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("with timeout: %v, want the client's deadline", err)
	}
	x.Remove("stall")

	x.Latency("slow", 10*time.Millisecond)
	if err := roundTrip(t, x.Addr, generous); err != nil {
		t.Errorf("with latency: %v, want the answer late", err)
	}
	x.Remove("slow")
}
