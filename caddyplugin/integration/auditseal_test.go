package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/auditseal"
)

// auditVerify runs the built binary's `passerelle audit-verify` and
// returns its exit status and output.
func auditVerify(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return passerelle(t, nil, append([]string{"audit-verify"}, args...)...)
}

// TestG09_SealedAuditTrail (SECURITY.md G09): the audit trail sealed by
// passerelle_sealed, through the real runtime and its batching writer, a
// configuration reload in the middle, verifies whole with the key
// (`passerelle audit-verify`), its one sequence running across the reload
// up to the count the gateway exports; a record altered, removed,
// replayed or forged in the file is reported with its line, and the trail
// does not verify under another key.
// req: G09
func TestG09_SealedAuditTrail(t *testing.T) {
	dir := logDir(t)
	key := filepath.Join(dir, "audit-seal.key")
	if err := os.WriteFile(key, []byte("seal-key-canary-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := auditseal.Sealed("itest")
	o := options{LogDir: dir, AuditSealKey: key}
	start(t, o)
	requests := func() {
		get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)                    // allowed
		get(t, gatewayPort, qf("recipient="+siret))                                            // refused: no token
		get(t, gatewayPort, qfIdentite+"?"+dupont().Encode(), bearer("sandbox_all_scopes")...) // identité
	}
	requests()
	o.HabQuota = "999999/s" // another configuration: a reload
	start(t, o)
	requests()

	trail := filepath.Join(dir, "audit.log")
	var lines [][]byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		data, _ := os.ReadFile(trail)
		if lines = bytes.SplitAfter(data, []byte("\n")); len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1] // after the last line end
		}
		if len(lines) >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records in the trail, want 6:\n%s", len(lines), data)
		}
	}
	if n := auditseal.Sealed("itest") - before; n != 6 {
		t.Fatalf("%d records sealed, want 6", n)
	}
	seq := func(n uint64) string { return strconv.FormatUint(before+n, 10) }
	code, out := auditVerify(t, "--key", "itest="+key, trail)
	if code != 0 || !strings.Contains(out, "6 records, 6 verified") || !strings.Contains(out, "boot "+auditseal.Boot("itest")+": 6 records, sequence "+seq(1)+" to "+seq(6)) ||
		!strings.HasSuffix(out, "OK\n") {
		t.Fatalf("the trail as written: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "seal-key-canary") {
		t.Fatal("the report prints the key")
	}

	// index returns the line holding s (the trail's order is the
	// writers', not necessarily the requests').
	index := func(s string) int {
		for i, l := range lines {
			if bytes.Contains(l, []byte(s)) {
				return i
			}
		}
		t.Fatalf("no record holds %s", s)
		return -1
	}
	allowed, third := index(`"decision":"allow"`), index(`"seal_seq":`+seq(3)+`,`)
	tampered := func(name string, change func([][]byte) [][]byte) string {
		c := make([][]byte, len(lines))
		for i := range lines {
			c[i] = bytes.Clone(lines[i])
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.Join(change(c), nil), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name   string
		change func([][]byte) [][]byte
		want   string
	}{
		{"altered", func(l [][]byte) [][]byte {
			l[allowed] = bytes.Replace(l[allowed], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
			return l
		}, "altered.log:" + strconv.Itoa(allowed+1) + ": ALTERED"},
		{"removed", func(l [][]byte) [][]byte { return append(l[:third], l[third+1:]...) }, "MISSING " + seq(3) + " to " + seq(3)},
		{"replayed", func(l [][]byte) [][]byte { return append(l, l[4]) }, "replayed.log:7: DUPLICATE"},
		{"unsealed", func(l [][]byte) [][]byte { return append(l, []byte(`{"decision":"allow"}`+"\n")) }, "unsealed.log:7: UNSEALED"},
	} {
		code, out := auditVerify(t, "--key", "itest="+key, tampered(tc.name+".log", tc.change))
		if code != 1 || !strings.Contains(out, tc.want) || !strings.HasSuffix(out, "FAILED\n") {
			t.Errorf("%s: exit %d, want 1 and %q\n%s", tc.name, code, tc.want, out)
		}
	}
	other := filepath.Join(dir, "other.key")
	_ = os.WriteFile(other, []byte("another-key-0123456789abcdef0123456789abcdef"), 0o600)
	if code, out := auditVerify(t, "--key", "itest="+other, trail); code != 1 || !strings.Contains(out, "ALTERED") {
		t.Errorf("another key: exit %d\n%s", code, out)
	}
	if code, out := auditVerify(t, trail); code != 2 || !strings.Contains(out, "--key") {
		t.Errorf("no key: exit %d\n%s", code, out)
	}
	// A key id given with two keys (its key changed across a restart
	// without a new id): each stream verifies under the key its records
	// verify with, whichever comes first.
	for _, keys := range [][]string{{key, other}, {other, key}} {
		if code, out := auditVerify(t, "--key", "itest="+keys[0], "--key", "itest="+keys[1], trail); code != 0 || !strings.Contains(out, "6 records, 6 verified") {
			t.Errorf("one key id with two keys: exit %d\n%s", code, out)
		}
	}
	// A key typed where its file's path goes is never echoed.
	for _, spec := range []string{"seal-key-canary-typed-in-place", "itest=seal-key-canary-typed-as-path"} {
		if code, out := auditVerify(t, "--key", spec, trail); code != 2 || strings.Contains(out, "canary") {
			t.Errorf("--key %s: exit %d\n%s", spec, code, out)
		}
	}
}
