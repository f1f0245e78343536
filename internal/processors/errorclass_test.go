package processors

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// ErrorClasses is the list the DLQ filter accepts and the docs are held
// to: each class once, each with a meaning, and no "" (a delivered attempt
// has no class, and a filter for it would match nothing dead-lettered).
func TestErrorClassesAreDistinctAndExplained(t *testing.T) {
	seen := map[ErrorClass]bool{}
	for _, c := range ErrorClasses {
		switch {
		case c.Class == ClassNone:
			t.Error("ErrorClasses lists ClassNone")
		case seen[c.Class]:
			t.Errorf("ErrorClasses lists %s twice", c.Class)
		case c.Meaning == "":
			t.Errorf("%s has no meaning", c.Class)
		}
		seen[c.Class] = true
	}
	for _, tc := range []struct {
		class ErrorClass
		known bool
	}{
		{ClassHTTP5xx, true},
		{ClassClientCert, true},
		{ClassDestinationRefused, true},
		{ClassNone, false},
		{"http_5xxx", false},
	} {
		if got := KnownClass(tc.class); got != tc.known {
			t.Errorf("KnownClass(%q) = %v, want %v", tc.class, got, tc.known)
		}
	}
}

// A class declared without a place in ErrorClasses would reach ClickHouse
// and the DLQ without the docs or the DLQ filter knowing it: every constant
// of type ErrorClass in this package's source is in the list.
func TestEveryDeclaredErrorClassIsListed(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				v := s.(*ast.ValueSpec)
				if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "ErrorClass" {
					continue
				}
				for i, n := range v.Names {
					lit, ok := v.Values[i].(*ast.BasicLit)
					if !ok {
						t.Fatalf("%s: %s is not a string literal", fset.Position(n.Pos()), n.Name)
					}
					c := ErrorClass(strings.Trim(lit.Value, "\"`"))
					declared++
					if c != ClassNone && !KnownClass(c) {
						t.Errorf("%s: %s (%q) is not in ErrorClasses", fset.Position(n.Pos()), n.Name, c)
					}
				}
			}
		}
	}
	if declared != len(ErrorClasses)+1 {
		t.Errorf("found %d ErrorClass constants, want the %d of ErrorClasses and ClassNone", declared, len(ErrorClasses))
	}
}
