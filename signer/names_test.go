package signer

import (
	"regexp"
	"testing"
)

// The forms the hand-written checks replace, as the service documents them.
var (
	regionRE      = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-\d+$`)
	accountRE     = regexp.MustCompile(`^\d{12}$`)
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

var nameSeeds = []string{"", "us-east-1", "us-gov-west-1", "eu-central-2", "cn-north-1", "u-east-1", "us-east-", "us--1",
	"us-1", "US-east-1", "us-east-1a", "us-east-1\n", "us-éast-1", "123456789012", "12345678901", "1234567890123",
	"12345678901a", "ab", "a", "app-1_x+=,.@", "app 1", "app/1", "0123456789012345678901234567890123456789012345678901234567890123",
	"01234567890123456789012345678901234567890123456789012345678901234", "x\x00y", "-_", "٣٣"}

// TestNameChecks: isRegion, isAccount and isSessionName accept what the
// regular expressions match, and nothing else.
func TestNameChecks(t *testing.T) {
	for _, s := range nameSeeds {
		checkNames(t, s)
	}
}

func FuzzNameChecks(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 256 {
			return
		}
		checkNames(t, s)
	})
}

func checkNames(t *testing.T, s string) {
	t.Helper()
	if got, want := isRegion(s), regionRE.MatchString(s); got != want {
		t.Errorf("isRegion(%q) = %v, the pattern says %v", s, got, want)
	}
	if got, want := isAccount(s), accountRE.MatchString(s); got != want {
		t.Errorf("isAccount(%q) = %v, the pattern says %v", s, got, want)
	}
	if got, want := isSessionName(s), sessionNameRE.MatchString(s); got != want {
		t.Errorf("isSessionName(%q) = %v, the pattern says %v", s, got, want)
	}
}
