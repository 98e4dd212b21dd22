package inject

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestCheckSize(t *testing.T) {
	lim := argLimits{total: 1000, perString: 100}
	env := []string{"A=" + strings.Repeat("a", 50), "B=" + strings.Repeat("b", 90), "SECRET=SNTL"}
	if err := checkSize([]string{"/bin/app"}, env, lim); err != nil {
		t.Fatalf("fits: %v", err)
	}
	// One string over the per-string limit.
	err := checkSize([]string{"/bin/app"}, append(env, "C="+strings.Repeat("c", 98)), lim)
	var se *SizeError
	if !errors.As(err, &se) || err.Error() != "the command's environment has variables over the system's limit of 100 bytes for one variable: C (101 bytes)" {
		t.Errorf("per string: %v", err)
	}
	if !se.Config() {
		t.Error("not a configuration error")
	}
	// Too much in total: the largest variables are named, largest first.
	many := []string{"X=" + strings.Repeat("x", 90), "Y=" + strings.Repeat("y", 80)}
	for range 12 {
		many = append(many, "Z=zz")
	}
	err = checkSize([]string{"/bin/app", strings.Repeat("arg", 300)}, many, lim)
	if err == nil || !strings.Contains(err.Error(), "over the system's limit of 1000; the largest variables: X (93 bytes), Y (83 bytes), Z (5 bytes)") {
		t.Errorf("total: %v", err)
	}
	if strings.Contains(err.Error(), "xxx") {
		t.Error("a value in the error")
	}
	// Pointers count: many empty variables do not fit either.
	var empties []string
	for range 200 {
		empties = append(empties, "E=")
	}
	if err := checkSize(nil, empties, lim); err == nil {
		t.Error("pointers not counted")
	}
}

func TestSystemLimits(t *testing.T) {
	lim := systemArgLimits()
	if lim.total < 128<<10 {
		t.Errorf("ARG_MAX %d", lim.total)
	}
	if runtime.GOOS == "linux" {
		if lim.perString < 128<<10 {
			t.Errorf("MAX_ARG_STRLEN %d", lim.perString)
		}
		if err := CheckSize([]string{"/bin/true"}, []string{"BIG=" + strings.Repeat("x", lim.perString)}); err == nil {
			t.Error("a variable over MAX_ARG_STRLEN passes")
		}
	}
	if err := CheckSize([]string{"/bin/true"}, []string{"OK=" + strings.Repeat("x", 64<<10)}); err != nil {
		t.Errorf("a 64 KiB variable: %v", err)
	}
}
