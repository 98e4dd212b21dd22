package inject

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencies keeps the package a library: no os/exec, no global
// logger, no printing to the process's streams, no exits.
func TestDependencies(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			switch path, _ := strconv.Unquote(imp.Path.Value); path {
			case "os/exec", "log", "syscall":
				t.Errorf("%s imports %s", name, path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok {
				call := x.Name + "." + sel.Sel.Name
				if (x.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "Print")) || call == "os.Exit" || call == "os.Stdout" ||
					call == "os.Stderr" || call == "os.Getenv" || call == "os.Environ" || call == "slog.Default" ||
					(x.Name == "slog" && (sel.Sel.Name == "Info" || sel.Sel.Name == "Debug" || sel.Sel.Name == "Warn" || sel.Sel.Name == "Error")) {
					t.Errorf("%s: %s uses %s", name, fset.Position(sel.Pos()), call)
				}
			}
			return true
		})
	}
}
