//go:build !linux

package supervise

import "syscall"

// maxSignal is the highest signal number; there are no realtime signals.
const maxSignal = 31

func rtForwarded() []syscall.Signal               { return nil }
func isRealtimeForwarded(syscall.Signal) bool     { return false }
func parseRealtime(string) (syscall.Signal, bool) { return 0, false }
func realtimeName(syscall.Signal) (string, bool)  { return "", false }
