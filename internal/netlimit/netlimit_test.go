package netlimit

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestSlots: an accepted connection holds a slot until it is closed, and
// closing it twice gives back one slot only.
func TestSlots(t *testing.T) {
	ln := New(mustListen(t), 2)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ln.slots); n != 1 {
		t.Fatalf("%d slots taken with one connection open, want 1", n)
	}
	s.Close()
	s.Close()
	if n := len(ln.slots); n != 0 {
		t.Fatalf("%d slots taken after the connection was closed twice, want 0", n)
	}
}

// TestCloseEndsWait: Close ends an Accept that waits for a slot.
func TestCloseEndsWait(t *testing.T) {
	ln := New(mustListen(t), 0) // no slot ever
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a wait for a slot")
	}
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
