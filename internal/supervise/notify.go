package supervise

import (
	"log/slog"
	"net"
	"strings"
	"time"
)

// notifyTimeout bounds a write to NOTIFY_SOCKET: a receiver whose queue is
// full must not hold up the loop that sends (the watchdog's pings come
// from it).
const notifyTimeout = 100 * time.Millisecond

// notifier sends sd_notify(3) messages to systemd. It is a few lines over
// a unixgram socket rather than go-systemd's daemon package because the
// socket comes from the caller's Config (a library does not read its
// process environment) and because the child keeps NOTIFY_SOCKET: rolesenv
// must not unset it, as daemon.SdNotify(true, ...) would.
type notifier struct {
	socket string // a path, or "@name" for an abstract socket
	log    *slog.Logger
}

func newNotifier(socket string, log *slog.Logger) *notifier {
	if socket == "" {
		return nil
	}
	return &notifier{socket: socket, log: log}
}

// send sends one datagram of newline-separated assignments. Failures are
// logged and otherwise ignored: systemd being gone must not hurt the
// child.
func (n *notifier) send(lines ...string) {
	if n == nil {
		return
	}
	if err := n.write(strings.Join(lines, "\n") + "\n"); err != nil {
		n.log.Debug("systemd notification failed", "err", err)
	}
}

// write sends msg as one datagram, giving up after notifyTimeout.
func (n *notifier) write(msg string) error {
	// Go maps a leading '@' to the abstract namespace itself.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(notifyTimeout)); err != nil {
		return err
	}
	_, err = conn.Write([]byte(msg))
	return err
}

// status returns a STATUS= line, one line long.
func status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}
