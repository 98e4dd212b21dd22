// Package netlimit caps the connections a listener has open at once. The
// local endpoints of rolesenv (the credentials endpoint, the metrics
// endpoint) use it so that a client that opens connections and holds them
// costs rolesenv no more than the cap in descriptors.
package netlimit

import (
	"net"
	"sync"
)

// Listener accepts a connection only while fewer than its cap are open.
// At the cap it does not call accept at all, so further connections wait
// in the kernel's listen backlog (and, past it, their SYNs are dropped
// and retried by the client) instead of each costing a descriptor. A
// connection gives its slot back when it is closed, once.
type Listener struct {
	net.Listener
	slots chan struct{} // one token per open connection
	done  chan struct{} // closed by Close, to end a wait for a slot
	once  sync.Once
}

// New wraps ln so that at most n of its connections are open at once.
func New(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &conn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

// Close ends a wait for a slot and closes the listener.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// conn gives its slot back when it is closed, once.
type conn struct {
	net.Conn
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
