package caddyplugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/logging"
)

// TestRollKeepMinusOneDeletesByAgeOnly pins the Caddy behaviour audit rule
// PA22 and the production template rely on (SECURITY.md G10): with
// roll_keep -1 Caddy's file writer deletes no rolled file for their
// number, only by age; with a count, the oldest go at once.
func TestRollKeepMinusOneDeletesByAgeOnly(t *testing.T) {
	backups := func(keep, rolls int) int {
		dir := t.TempDir()
		fw := &logging.FileWriter{Filename: filepath.Join(dir, "audit.log"), RollKeep: keep, RollKeepDays: 183, RollCompression: "none"}
		w, err := fw.OpenWriter()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		rotator, ok := w.(interface{ Rotate() error })
		if !ok {
			t.Fatalf("Caddy's file writer is a %T, with no Rotate", w)
		}
		for i := 0; i < rolls; i++ {
			if _, err := w.Write([]byte("{\"record\":1}\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // distinct roll times (ms in the name)
			if err := rotator.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
		// Deletion runs in the background after a roll: wait for it (a
		// count), or long enough for it to have run (none).
		count := func() (n int) {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "audit-") {
					n++
				}
			}
			return n
		}
		if keep <= 0 {
			time.Sleep(500 * time.Millisecond)
			return count()
		}
		for deadline := time.Now().Add(5 * time.Second); count() > keep && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		return count()
	}
	if n := backups(3, 12); n != 3 {
		t.Fatalf("roll_keep 3 after 12 rolls: %d rolled files", n)
	}
	if n := backups(-1, 12); n != 12 {
		t.Fatalf("roll_keep -1 after 12 rolls: %d rolled files, want all 12", n)
	}
}
