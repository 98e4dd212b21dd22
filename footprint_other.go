//go:build !linux

package main

// dropBinaryPages does nothing but on Linux, where it lowers the resident
// pages of rolesenv's own executable (footprint_linux.go).
func dropBinaryPages() (int, error) { return 0, nil }
