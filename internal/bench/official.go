package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// officialHelperModule is the official IAM Roles Anywhere credential helper
// (aws_signing_helper), at the version the comparisons are made with. It is
// built from the Go module proxy into the run's temporary directory and
// never kept: it needs cgo (its PKCS#11 support), so a machine without a C
// compiler has no comparison and the report says so.
const officialHelperModule = "github.com/aws/rolesanywhere-credential-helper@v1.4.0"

var official struct {
	once sync.Once
	path string
	err  error
}

// officialHelper builds the official helper once per run and returns the
// path of its binary (the one `aws_signing_helper` is installed as).
func (b *bench) officialHelper() (string, error) {
	official.once.Do(func() {
		bin := filepath.Join(b.dir, "official-helper")
		b.log("building the official helper (%s)", officialHelperModule)
		cmd := exec.Command("go", "install", officialHelperModule)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=1", "GOFLAGS=-mod=mod")
		cmd.Dir = b.dir // outside this module: the helper's own go.mod decides its dependencies
		if out, err := cmd.CombinedOutput(); err != nil {
			official.err = fmt.Errorf("failed to build the official helper: %w\n%s", err, out)
			return
		}
		official.path = filepath.Join(bin, "rolesanywhere-credential-helper")
	})
	return official.path, official.err
}
