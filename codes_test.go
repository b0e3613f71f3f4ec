package lessee_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"

	"github.com/fleetreg/lessee"
)

// TestCodesComplete holds Codes to every Code constant declared in
// lessee.go, so that a new code cannot miss the list the message
// catalogue is checked against.
func TestCodesComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "lessee.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					declared = append(declared, lit.Value[1:len(lit.Value)-1])
				}
			}
		}
	}
	var listed []string
	for _, c := range lessee.Codes() {
		listed = append(listed, string(c))
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if len(declared) == 0 || !slices.Equal(declared, listed) {
		t.Errorf("Codes() = %v\nlessee.go declares %v", listed, declared)
	}
}
