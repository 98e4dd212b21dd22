package signer

import (
	"log/slog"
	"os"
	"sync"
	"time"
)

// FileIdentity is an IdentitySource that loads its files again when one
// of them changes on disk, so that a long-running process picks up a
// renewed certificate. It keeps the passphrase in memory for that.
//
// A reload that fails (a half-written file, a key that does not match yet)
// or gives an identity that fails Check keeps the previous identity while
// that one passes Check, with a warning; the next call tries again.
type FileIdentity struct {
	opts LoadOptions
	now  func() time.Time
	log  *slog.Logger

	mu     sync.Mutex
	id     *Identity
	stamps []stamp
	warned string // the failure last warned about, to warn once
}

type stamp struct {
	mod  time.Time
	size int64
}

// NewFileIdentity loads the files (see LoadFiles). now is the clock of the
// checks after a reload (nil means time.Now); logger gets the reloads (nil
// means quiet).
func NewFileIdentity(opts LoadOptions, now func() time.Time, logger *slog.Logger) (*FileIdentity, error) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FileIdentity{opts: opts, now: now, log: logger}
	st := f.stat()
	id, err := LoadFiles(opts)
	if err != nil {
		return nil, err
	}
	f.id, f.stamps = id, st
	return f, nil
}

// Current returns the identity, reloaded first if a file changed.
func (f *FileIdentity) Current() (*Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stat()
	if sameStamps(st, f.stamps) {
		return f.id, nil
	}
	id, err := LoadFiles(f.opts)
	if err == nil {
		var warns []Warning
		if warns, err = id.Check(f.now()); err == nil {
			f.id, f.stamps, f.warned = id, st, ""
			f.log.Info("certificate files changed; loaded them again",
				"certificate", f.opts.Certificate, "serial", id.Serial(), "not_after", id.Certificate.NotAfter.UTC().Format(time.RFC3339))
			for _, w := range warns {
				f.log.Warn(w.Msg, "file", w.Path)
			}
			return id, nil
		}
	}
	if _, oldErr := f.id.Check(f.now()); oldErr != nil {
		return nil, err
	}
	if msg := err.Error(); msg != f.warned {
		f.warned = msg
		f.log.Warn("certificate files changed but cannot be used; keeping the previous ones", "error", msg)
	}
	return f.id, nil
}

func (f *FileIdentity) stat() []stamp {
	var out []stamp
	for _, p := range []string{f.opts.Certificate, f.opts.PrivateKey, f.opts.Intermediates} {
		var s stamp
		if p != "" {
			if fi, err := os.Stat(p); err == nil {
				s = stamp{fi.ModTime(), fi.Size()}
			}
		}
		out = append(out, s)
	}
	return out
}

func sameStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}
