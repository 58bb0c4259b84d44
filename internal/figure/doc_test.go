package figure_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// TestPackageCommentsInDocGo holds the figure packages to the style rule:
// the package comment is in doc.go and nowhere else.
func TestPackageCommentsInDocGo(t *testing.T) {
	for _, dir := range []string{".", "figuretest", filepath.Join("..", "..", "kit", "internal", "figdata")} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var with []string
		for _, f := range files {
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Doc != nil {
				with = append(with, filepath.Base(f))
			}
		}
		if len(with) != 1 || with[0] != "doc.go" {
			t.Errorf("%s: package comment in %q, want it in doc.go only", dir, with)
		}
	}
}
