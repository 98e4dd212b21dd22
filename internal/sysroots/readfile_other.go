//go:build !linux

package sysroots

import "os"

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }
