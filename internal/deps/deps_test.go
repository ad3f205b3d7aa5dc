package deps

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// requirements returns the module paths a go.mod requires, each with
// " // indirect" appended when so marked.
func requirements(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reqs []string
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		r := fields[0]
		if strings.HasSuffix(line, "// indirect") {
			r += " // indirect"
		}
		reqs = append(reqs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(reqs)
	return reqs
}

// TestCoreRequirements fails when the root module gains or loses a
// requirement: a new dependency of the core must be a decision, made here.
func TestCoreRequirements(t *testing.T) {
	want := []string{
		"github.com/cespare/xxhash/v2",
		"github.com/stretchr/testify // indirect", // goleak's tests
		"go.uber.org/goleak",
		"golang.org/x/time",
	}
	got := requirements(t, "../../go.mod")
	if !slices.Equal(got, want) {
		t.Fatalf("the core module requires\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestRequirementsParser: the parser reads both forms of require.
func TestRequirementsParser(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/go.mod"
	mod := "module x\n\ngo 1.26.0\n\nrequire a.example/one v1.0.0\n\nrequire (\n\tb.example/two v0.1.0\n\tc.example/three v0.2.0 // indirect\n)\n"
	if err := os.WriteFile(path, []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{"a.example/one", "b.example/two", "c.example/three // indirect"}
	if got := requirements(t, path); !slices.Equal(got, want) {
		t.Fatalf("parsed %q, want %q", got, want)
	}
}
