package standards

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// pkgFiles is one package of one directory: its source files and, apart,
// its test files (external test package included).
type pkgFiles struct {
	dir   string
	name  string
	fset  *token.FileSet
	files map[string]*ast.File
	tests []*ast.File
}

// repoRoot is the repository's root, two levels above this package. The
// tests skip where it has no go.work: a copy of the core module alone (in
// a module cache) is not the workspace they check.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Skipf("%s is not the workspace's root (no go.work): %v", root, err)
	}
	return root
}

// parsed holds the workspace's packages, parsed once for every test.
var parsed struct {
	once sync.Once
	pkgs []*pkgFiles
	err  error
}

// packages returns every package under root, parsed on the first call
// (parseAll).
func packages(t *testing.T, root string) []*pkgFiles {
	t.Helper()
	parsed.once.Do(func() { parsed.pkgs, parsed.err = parseAll(root) })
	if parsed.err != nil {
		t.Fatal(parsed.err)
	}
	return parsed.pkgs
}

// parseAll parses every Go file under root, skipping the directories the
// go command ignores (names starting with "." or "_", and testdata).
func parseAll(root string) ([]*pkgFiles, error) {
	fset := token.NewFileSet()
	byDir := map[string]*pkgFiles{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		p := byDir[dir]
		if p == nil {
			p = &pkgFiles{dir: dir, fset: fset, files: map[string]*ast.File{}}
			byDir[dir] = p
		}
		if strings.HasSuffix(name, "_test.go") {
			p.tests = append(p.tests, f)
			return nil
		}
		p.name = f.Name.Name
		p.files[name] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []*pkgFiles
	for _, p := range byDir {
		if len(p.files) > 0 {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *pkgFiles) int { return strings.Compare(a.dir, b.dir) })
	if len(out) < 10 {
		return nil, fmt.Errorf("found %d packages under %s; the walk is broken", len(out), root)
	}
	return out, nil
}

// TestPackageDocs: every package has a doc.go that carries its package
// comment.
func TestPackageDocs(t *testing.T) {
	root := repoRoot(t)
	for _, p := range packages(t, root) {
		rel, _ := filepath.Rel(root, p.dir)
		f, ok := p.files["doc.go"]
		switch {
		case !ok:
			t.Errorf("%s: no doc.go", rel)
		case f.Doc == nil:
			t.Errorf("%s/doc.go: no package comment", rel)
		}
	}
}

// TestExportedNamesDocumented: every exported top-level name, every
// exported method of an exported type and every exported field of an
// exported struct has a doc comment (for a name in a grouped declaration,
// its own or the group's; for a field, its own, one on its line, or that of
// the run of fields it belongs to: see undocumentedFields).
func TestExportedNamesDocumented(t *testing.T) {
	root := repoRoot(t)
	for _, p := range packages(t, root) {
		rel, _ := filepath.Rel(root, p.dir)
		for fname, f := range p.files {
			for _, name := range undocumented(p.fset, f) {
				t.Errorf("%s: %s has no doc comment", filepath.Join(rel, fname), name)
			}
		}
	}
}

// TestExportedTypesHaveExamples: every exported type of a library package
// outside internal/ has an Example in its package's tests.
func TestExportedTypesHaveExamples(t *testing.T) {
	root := repoRoot(t)
	for _, p := range packages(t, root) {
		rel, _ := filepath.Rel(root, p.dir)
		if p.name == "main" || slices.Contains(strings.Split(filepath.ToSlash(rel), "/"), "internal") {
			continue
		}
		examples := exampleNames(p.tests)
		for _, typ := range exportedTypes(p.files) {
			if !hasExample(examples, typ) {
				t.Errorf("%s: exported type %s has no Example%s in the package's tests", rel, typ, typ)
			}
		}
	}
}

// undocumented returns the exported top-level names of f without a doc
// comment, as "func F", "method T.M", "type T", "const C" or "var V", and
// the undocumented fields of its exported structs, as "field T.F".
func undocumented(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || d.Doc != nil {
				continue
			}
			if d.Recv == nil {
				out = append(out, "func "+d.Name.Name)
				continue
			}
			if recv := receiverType(d.Recv.List[0].Type); ast.IsExported(recv) {
				out = append(out, "method "+recv+"."+d.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					if s.Doc == nil && d.Doc == nil {
						out = append(out, "type "+s.Name.Name)
					}
					if st, ok := s.Type.(*ast.StructType); ok {
						out = append(out, undocumentedFields(fset, s.Name.Name, st)...)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && s.Doc == nil && d.Doc == nil && s.Comment == nil {
							out = append(out, d.Tok.String()+" "+n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// undocumentedFields returns the exported fields of struct typ without a
// doc comment, as "field T.F". A field is documented by a comment above it
// or on its line, or by the comment above the first field of the run of
// fields, on consecutive lines, that it belongs to. Embedded fields are
// documented by their type.
func undocumentedFields(fset *token.FileSet, typ string, st *ast.StructType) []string {
	var out []string
	covered, prevEnd := false, -1
	for _, fl := range st.Fields.List {
		first := fset.Position(fl.Pos()).Line
		switch {
		case fl.Doc != nil:
			covered = true
		case first > prevEnd+1:
			// A blank line (or the struct's opening) starts a new run.
			covered = false
		}
		prevEnd = fset.Position(fl.End()).Line
		if covered || fl.Comment != nil {
			continue
		}
		for _, n := range fl.Names {
			if n.IsExported() {
				out = append(out, "field "+typ+"."+n.Name)
			}
		}
	}
	return out
}

// receiverType returns the name of a method's receiver type.
func receiverType(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return receiverType(x.X)
	case *ast.IndexExpr:
		return receiverType(x.X)
	case *ast.IndexListExpr:
		return receiverType(x.X)
	case *ast.Ident:
		return x.Name
	}
	return ""
}

// exportedTypes returns the exported types declared in files, sorted.
func exportedTypes(files map[string]*ast.File) []string {
	var out []string
	for _, f := range files {
		for _, decl := range f.Decls {
			d, ok := decl.(*ast.GenDecl)
			if !ok || d.Tok != token.TYPE {
				continue
			}
			for _, spec := range d.Specs {
				if s := spec.(*ast.TypeSpec); s.Name.IsExported() {
					out = append(out, s.Name.Name)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// exampleNames returns the names of the Example functions in files.
func exampleNames(files []*ast.File) []string {
	var out []string
	for _, f := range files {
		for _, decl := range f.Decls {
			if d, ok := decl.(*ast.FuncDecl); ok && d.Recv == nil && strings.HasPrefix(d.Name.Name, "Example") {
				out = append(out, d.Name.Name)
			}
		}
	}
	return out
}

// hasExample reports whether examples document typ: Example<typ>, or
// Example<typ>_<suffix> (a method's example or a named variant).
func hasExample(examples []string, typ string) bool {
	for _, e := range examples {
		if e == "Example"+typ || strings.HasPrefix(e, "Example"+typ+"_") {
			return true
		}
	}
	return false
}

// TestCheckersFindViolations feeds each checker a file that breaks its rule,
// so that a checker that found nothing would fail here.
func TestCheckersFindViolations(t *testing.T) {
	const src = `package x

type Bare struct{}

// Documented is documented.
type Documented struct{}

func (Bare) Method() {}

// Method is documented.
func (Documented) Method() {}

func (b *bare) Hidden() {}

type bare struct{}

func Func() {}

const (
	A = 1 // A is documented on its line.
	B = 2
)

// Group documents every name in it.
var (
	C, D = 3, 4
)

// Fields has fields of every kind.
type Fields struct {
	// Own is documented, and so is Run, the next line.
	Own int
	Run int

	Lone   int
	Inline int // Inline is documented on its line.
	hidden int
	Bare

	// Multi and Names are documented together.
	Multi, Names int
	Again, After int
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	got := undocumented(fset, f)
	want := []string{"type Bare", "method Bare.Method", "func Func", "const B", "field Fields.Lone"}
	if !slices.Equal(got, want) {
		t.Errorf("undocumented = %q, want %q", got, want)
	}
	types := exportedTypes(map[string]*ast.File{"x.go": f})
	if !slices.Equal(types, []string{"Bare", "Documented", "Fields"}) {
		t.Errorf("exportedTypes = %q", types)
	}
	examples := []string{"ExampleDocumented_Method", "ExampleBareish"}
	if hasExample(examples, "Bare") || !hasExample(examples, "Documented") {
		t.Errorf("hasExample(%q): Bare %v, Documented %v, want false, true", examples,
			hasExample(examples, "Bare"), hasExample(examples, "Documented"))
	}
}

// TestGoroutinePackagesCheckLeaks: a package whose code starts goroutines
// (a go statement, or a call of a method named Go, as sync.WaitGroup's and
// errgroup's) and that has tests runs goleak.VerifyTestMain in them.
func TestGoroutinePackagesCheckLeaks(t *testing.T) {
	root := repoRoot(t)
	checked := 0
	for _, p := range packages(t, root) {
		rel, _ := filepath.Rel(root, p.dir)
		if len(p.tests) == 0 || !startsGoroutines(p.files) {
			continue
		}
		checked++
		if !callsVerifyTestMain(p.tests) {
			t.Errorf("%s: starts goroutines but its tests do not run goleak.VerifyTestMain", rel)
		}
	}
	if checked == 0 {
		t.Fatal("no package starts goroutines; the detection is broken")
	}
}

// startsGoroutines reports whether files hold a go statement or a call of
// a method named Go.
func startsGoroutines(files map[string]*ast.File) bool {
	found := false
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.GoStmt:
				found = true
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Go" {
					found = true
				}
			}
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// callsVerifyTestMain reports whether files call goleak.VerifyTestMain.
func callsVerifyTestMain(files []*ast.File) bool {
	found := false
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "VerifyTestMain" {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "goleak" {
						found = true
					}
				}
			}
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// TestLeakCheckDetection: the goroutine and goleak detectors see what
// they look for, and nothing else.
func TestLeakCheckDetection(t *testing.T) {
	parse := func(src string) *ast.File {
		t.Helper()
		f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, c := range []struct {
		src  string
		want bool
	}{
		{"package x\nfunc f() { go g() }\nfunc g() {}", true},
		{"package x\nimport \"sync\"\nfunc f(wg *sync.WaitGroup) { wg.Go(func() {}) }", true},
		{"package x\nfunc f() { g() }\nfunc g() {}", false},
	} {
		if got := startsGoroutines(map[string]*ast.File{"x.go": parse(c.src)}); got != c.want {
			t.Errorf("startsGoroutines(%q) = %v, want %v", c.src, got, c.want)
		}
	}
	with := parse("package x\nimport (\"testing\"; \"go.uber.org/goleak\")\nfunc TestMain(m *testing.M) { goleak.VerifyTestMain(m) }")
	without := parse("package x\nimport \"testing\"\nfunc TestMain(m *testing.M) { m.Run() }")
	if !callsVerifyTestMain([]*ast.File{without, with}) || callsVerifyTestMain([]*ast.File{without}) {
		t.Error("callsVerifyTestMain misjudged a TestMain")
	}
}
