//go:build !linux

package secretfiles

func startTime(int) string { return "" }
func bootID() string       { return "" }
func pidNamespace() string { return "" }
func onMemory(int) bool    { return false }
