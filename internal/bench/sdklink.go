package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The SDK-linking program: the bare Go program of credproc.go plus blank
// imports of every third-party package rolesenv's own packages import (the
// AWS SDK's clients and configuration, smithy-go, TPM, PKCS#12, pflag,
// x/sys, x/crypto). It links the same third-party packages as rolesenv's
// binary, found at build time with `go list`, and runs nothing but their
// package initialisation and one write: the start that any Go program
// linking them pays, whatever it does after.

const rolesenvModule = "github.com/rolesenv/rolesenv"

// goListEnv is the environment rolesenv is built in, so that `go list`
// sees the files the build compiles.
func goListEnv() []string { return append(os.Environ(), "CGO_ENABLED=0") }

// thirdParty lists the packages that pkg links from modules other than
// module and the standard library (all), and those of them that module's
// own packages import directly (top): linking top links all.
func thirdParty(pkg, module, dir string, env []string) (top, all []string, err error) {
	cmd := exec.Command("go", "list", "-deps", "-f",
		"{{.ImportPath}}\t{{.Standard}}\t{{with .Module}}{{.Path}}{{end}}\t{{join .Imports \" \"}}", pkg)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to list the packages %s links: %v", pkg, errText(err))
	}
	type listed struct {
		module  string
		imports []string
	}
	pkgs := map[string]listed{}
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 4 {
			return nil, nil, fmt.Errorf("go list printed an unexpected line %q", line)
		}
		if f[1] == "true" {
			continue
		}
		pkgs[f[0]] = listed{module: f[2], imports: strings.Fields(f[3])}
	}
	topSet := map[string]bool{}
	for path, p := range pkgs {
		if p.module != module {
			all = append(all, path)
			continue
		}
		for _, imp := range p.imports {
			if q, ok := pkgs[imp]; ok && q.module != module {
				topSet[imp] = true
			}
		}
	}
	for path := range topSet {
		top = append(top, path)
	}
	slices.Sort(top)
	slices.Sort(all)
	return top, all, nil
}

// errText adds what a failed command wrote on its standard error.
func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Sprintf("%v: %s", err, lastLine(string(ee.Stderr)))
	}
	return err.Error()
}

// sdkProgram is the built SDK-linking program and what it links.
type sdkProgram struct {
	path     string
	imports  int // third-party packages it imports
	packages int // third-party packages it links, as rolesenv does
}

// sdkSource is the program: one line written, the packages linked.
func sdkSource(imports []string) string {
	var b strings.Builder
	b.WriteString("// Command sdklink links rolesenv's third-party packages and writes one line.\npackage main\n\nimport (\n\t\"os\"\n\n")
	for _, p := range imports {
		fmt.Fprintf(&b, "\t_ %q\n", p)
	}
	b.WriteString(")\n\nfunc main() { os.Stdout.WriteString(\"{}\\n\") }\n")
	return b.String()
}

// buildSDKLinked builds the SDK-linking program into dir, as the bare
// program is built (static, -trimpath, -ldflags '-s -w'), in a module of
// its own with rolesenv's go.mod and go.sum: the same versions. It fails
// unless the program links exactly rolesenv's third-party packages.
func buildSDKLinked(dir string) (*sdkProgram, error) {
	cmd := exec.Command("go", "list", "-f", "{{.Module.Dir}}", rolesenvModule)
	cmd.Env = goListEnv()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("failed to find rolesenv's module: %v", errText(err))
	}
	modDir := strings.TrimSpace(string(out))
	top, all, err := thirdParty(rolesenvModule, rolesenvModule, modDir, goListEnv())
	if err != nil {
		return nil, err
	}
	src := filepath.Join(dir, "sdk-go")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	gomod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return nil, err
	}
	gosum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return nil, err
	}
	gomod = []byte(strings.Replace(string(gomod), "module "+rolesenvModule+"\n", "module sdklink\n", 1))
	files := map[string][]byte{"go.mod": gomod, "go.sum": gosum, "main.go": []byte(sdkSource(top))}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(src, name), text, 0o644); err != nil {
			return nil, err
		}
	}
	env := append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	_, linked, err := thirdParty("sdklink", "sdklink", src, env)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(linked, all) {
		return nil, fmt.Errorf("the SDK-linking program links %d third-party packages, rolesenv %d: they should be the same", len(linked), len(all))
	}
	bin := filepath.Join(dir, "sdk")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Dir = src
	build.Env = env
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("failed to build the SDK-linking program: %v: %s", err, b)
	}
	return &sdkProgram{path: bin, imports: len(top), packages: len(all)}, nil
}
