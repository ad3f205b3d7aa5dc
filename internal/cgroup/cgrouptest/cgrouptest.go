package cgrouptest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shoal-go/shoal/internal/cgroup"
)

// Parent finds a directory under which a test may create cgroups with
// controller ("memory", "cpu"): this process's own group in the
// controller's v1 hierarchy, or the v2 hierarchy's root when it delegates
// the controller. It checks that a child created there has the
// controller's limit file (v1File or v2File) and removes the child again.
func Parent(controller, v1File, v2File string) (dir string, v2 bool, err error) {
	if runtime.GOOS != "linux" {
		return "", false, errors.New("not Linux")
	}
	if os.Geteuid() != 0 {
		return "", false, errors.New("not root")
	}
	g, ok := cgroup.Find(os.ReadFile, controller)
	if !ok {
		return "", false, fmt.Errorf("no %s cgroup mount", controller)
	}
	if !g.V2 {
		return g.Dir, false, probe(g.Dir, v1File)
	}
	ctl, err := os.ReadFile(filepath.Join(g.Top, "cgroup.subtree_control"))
	if err != nil || !cgroup.HasOpt(strings.ReplaceAll(strings.TrimSpace(string(ctl)), " ", ","), controller) {
		return "", false, fmt.Errorf("cgroup v2 root does not delegate the %s controller", controller)
	}
	return g.Top, true, probe(g.Top, v2File)
}

// probe creates and removes a child cgroup of parent and checks that it
// has file.
func probe(parent, file string) error {
	dir := filepath.Join(parent, fmt.Sprintf("shoal-probe-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer os.Remove(dir)
	_, err := os.Stat(filepath.Join(dir, file))
	return err
}

// Write writes value to the cgroup file dir/file, failing t if it cannot.
func Write(t testing.TB, dir, file, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
		t.Fatalf("writing %s: %v", filepath.Join(dir, file), err)
	}
}
