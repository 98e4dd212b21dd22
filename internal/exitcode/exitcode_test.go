package exitcode

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

type classed struct {
	usage, config, denied, resource, unavailable, temp bool
	hint                                               string
}

func (c classed) Error() string      { return "classed" }
func (c classed) Usage() bool        { return c.usage }
func (c classed) Config() bool       { return c.config }
func (c classed) AccessDenied() bool { return c.denied }
func (c classed) Resource() bool     { return c.resource }
func (c classed) Unavailable() bool  { return c.unavailable }
func (c classed) TempFail() bool     { return c.temp }
func (c classed) Hint() string       { return c.hint }

type exact int

func (e exact) Error() string { return "exact" }
func (e exact) ExitCode() int { return int(e) }

func TestOfPrecedence(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, OK},
		{"plain", errors.New("x"), Internal},
		{"exact", fmt.Errorf("w: %w", exact(3)), 3},
		{"config over exact", errors.Join(exact(3), classed{config: true}), Config},
		{"config over denied", errors.Join(classed{denied: true}, classed{config: true}), Config},
		{"denied over resource", errors.Join(classed{resource: true}, classed{denied: true}), NoPerm},
		{"resource over unavailable", errors.Join(classed{unavailable: true}, classed{resource: true}), OSError},
		{"unavailable over tempfail", errors.Join(classed{temp: true}, classed{unavailable: true}), Unavailable},
		{"usage first", errors.Join(classed{config: true}, classed{usage: true}), Usage},
		{"a false method is no class", classed{}, Internal},
		{"a file that could not be opened for lack of descriptors", errors.Join(classed{config: true}, &os.PathError{Op: "open", Path: "app.env", Err: syscall.EMFILE}), OSError},
		{"no memory", fmt.Errorf("w: %w", syscall.ENOMEM), OSError},
		{"usage still first", errors.Join(classed{usage: true}, syscall.ENFILE), Usage},
	} {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("%s: Of = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestHintsDistinctInOrder(t *testing.T) {
	err := errors.Join(classed{hint: "a"}, fmt.Errorf("w: %w", classed{hint: "b"}), classed{hint: "a"}, classed{})
	got := Hints(err)
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Hints = %q, want [a b]", got)
	}
}
