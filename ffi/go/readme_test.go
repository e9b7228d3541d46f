// Keeps the README's Go snippet and the Example function's body the same text.

package tether_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// readmeSnippet is the fenced go block between the go markers of the root README.md.
func readmeSnippet(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "<!-- go:start -->")
	section, _, ok2 := strings.Cut(section, "<!-- go:end -->")
	_, code, ok3 := strings.Cut(section, "```go\n")
	code, _, ok4 := strings.Cut(code, "```")
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatal("README.md has no ```go block between <!-- go:start --> and <!-- go:end -->")
	}
	return code
}

// exampleBody is the body of func Example in example_test.go, one tab of indent removed.
func exampleBody(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "example_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range file.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Example" {
			body := string(src[fset.Position(fn.Body.Lbrace).Offset+2 : fset.Position(fn.Body.Rbrace).Offset])
			return strings.ReplaceAll(strings.TrimPrefix(body, "\t"), "\n\t", "\n")
		}
	}
	t.Fatal("example_test.go has no func Example")
	return ""
}

func TestReadmeSnippet(t *testing.T) {
	if got, want := readmeSnippet(t), exampleBody(t); got != want {
		t.Fatalf("README.md's Go snippet differs from Example in example_test.go:\n--- README\n%s--- Example\n%s", got, want)
	}
}
