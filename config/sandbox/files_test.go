package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadRefusesNonRegularFiles: a FIFO named like a case file, or a
// symbolic link to one, is refused with an error naming it, instead of
// blocking the load (and Caddy's start or reload) in its open; a symbolic
// link to a regular case file still loads.
func TestLoadRefusesNonRegularFiles(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	valid := "params: {a: 1}\nstatus: 200\npayload: '{}'"
	if err := os.Mkdir(filepath.Join(dir, "op"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "op", "ok.yml"), filepath.Join(outside, "real.yml")} {
		if err := os.WriteFile(p, []byte(valid), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "op", "fifo.yml"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := syscall.Mkfifo(filepath.Join(outside, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"to_fifo.yml": "fifo", "to_file.yml": "real.yml"} {
		if err := os.Symlink(filepath.Join(outside, target), filepath.Join(dir, "op", link)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { _, err := Load(os.DirFS(dir)); done <- err }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
	for _, want := range []string{"op/fifo.yml: not a regular file", "op/to_fifo.yml: not a regular file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "to_file.yml") {
		t.Errorf("a symbolic link to a regular case file refused: %v", err)
	}
}
