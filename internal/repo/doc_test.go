package repo

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPackageCommentsInDocGo holds the repository to the style rule: a
// package of more than one file (commands aside: theirs is in main.go)
// has its package comment in doc.go, and only there.
func TestPackageCommentsInDocGo(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	withDoc := map[string][]string{} // by directory: the files with a package comment
	files := map[string]int{}        // by directory: the package's files
	main := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, ".pb.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		files[dir]++
		main[dir] = f.Name.Name == "main"
		if f.Doc != nil {
			withDoc[dir] = append(withDoc[dir], name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for dir, n := range files {
		if n < 2 || main[dir] {
			continue
		}
		checked++
		if !slices.Equal(withDoc[dir], []string{"doc.go"}) {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("%s: package comment in %q, want it in doc.go only", rel, withDoc[dir])
		}
	}
	if checked < 20 {
		t.Errorf("only %d packages of several files found under %s", checked, root)
	}
}
