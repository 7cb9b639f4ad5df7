package habilitation

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Reload fixtures: habilitation X has client id "client-X" and API token
// "pa_token-X". C is revoked.

var reloadNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// hab writes entry id in block style; set overrides fields ("-" deletes one).
func hab(id string, set map[string]string) string {
	f := map[string]string{
		"id":                        `"` + id + `"`,
		"label":                     `"Habilitation ` + id + `"`,
		"siret":                     `"21930048000015"`,
		"modalities":                "[france_connect, identite]",
		"france_connect_client_ids": "[client-" + id + "]",
		"api_token_sha256":          `["` + digestOf("pa_token-"+id) + `"]`,
		"scopes":                    "[s1]",
	}
	order := []string{"id", "label", "siret", "modalities", "france_connect_client_ids", "api_token_sha256", "scopes"}
	for k, v := range set {
		if v == "-" {
			delete(f, k)
			continue
		}
		if _, ok := f[k]; !ok {
			order = append(order, k)
		}
		f[k] = v
	}
	var b strings.Builder
	for i, k := range order {
		v, ok := f[k]
		if !ok {
			continue
		}
		if i == 0 {
			b.WriteString("  - ")
		} else {
			b.WriteString("    ")
		}
		b.WriteString(k + ": " + v + "\n")
	}
	return b.String()
}

func regYAML(entries ...string) string { return "habilitations:\n" + strings.Join(entries, "") }

var reloadBase = regYAML(hab("A", nil), hab("B", nil), hab("C", map[string]string{"revoked": "true"}))

// badSIRET makes entry B invalid for a reason unrelated to A.
var badSIRET = map[string]string{"siret": `"21930048000016"`}

func startWatcher(t *testing.T, content string, opts WatchOptions) (*Watcher, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "h.yaml")
	writeFile(t, p, content)
	w, err := NewWatcher(p, time.Second, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w, p
}

// usable reports whether any credential of habilitation id still opens
// something: its client id or its API token finds an active habilitation.
func usable(r *Registry, id string) bool {
	h1, ok1 := r.ByClientID("client-" + id)
	h2, ok2 := r.ByAPIToken("pa_token-" + id)
	return ok1 && h1.ActiveAt(reloadNow) || ok2 && h2.ActiveAt(reloadNow)
}

// checkKept fails unless the habilitations ids are served as before.
func checkKept(t *testing.T, before, after *Registry, ids ...string) {
	t.Helper()
	for _, id := range ids {
		h0, _ := before.ByID(id)
		h1, ok := after.ByID(id)
		c, _ := after.ByClientID("client-" + id)
		k, _ := after.ByAPIToken("pa_token-" + id)
		if !ok || h1 != h0 || c != h0 || k != h0 {
			t.Errorf("habilitation %s not kept as before", id)
		}
	}
}

func checkStatus(t *testing.T, w *Watcher, state string, restricted int) {
	t.Helper()
	if st := w.Status(); st.State != state || st.Restricted != restricted || st.Since.IsZero() {
		t.Errorf("Status = %+v, want %s with Restricted %d", st, state, restricted)
	}
}

// TestC02_RefusedFileStillRevokes: a file revoking A with an unrelated error
// (or an error in the revocation itself) is refused, but A is revoked.
func TestC02_RefusedFileStillRevokes(t *testing.T) {
	for name, content := range map[string]string{
		"error in B":         regYAML(hab("A", map[string]string{"revoked": "true"}), hab("B", badSIRET), hab("C", map[string]string{"revoked": "true"})),
		"revoked: \"yes\"":   regYAML(hab("A", map[string]string{"revoked": `"yes"`}), hab("B", nil), hab("C", map[string]string{"revoked": "true"})),
		"secret in B":        regYAML(hab("A", map[string]string{"revoked": "TRUE"}), hab("B", map[string]string{"client_secret": `"Zm9vYmFyYmF6cXV4c2VjcmV0"`}), hab("C", map[string]string{"revoked": "true"})),
		"error in A":         regYAML(hab("A", map[string]string{"revoked": "true", "label": `""`}), hab("B", nil), hab("C", map[string]string{"revoked": "true"})),
		"duplicate id, flow": "habilitations:\n  - {id: A, revoked: true}\n" + hab("B", nil) + hab("C", nil) + hab("C", nil),
		"sandbox token refused": regYAML(hab("A", map[string]string{"revoked": "true"}),
			hab("B", map[string]string{"api_token_sha256": `["` + digestOf("pa_token-B") + `", "` + SandboxAPITokenSHA256 + `"]`}), hab("C", nil)),
	} {
		t.Run(name, func(t *testing.T) {
			var log logRec
			w, p := startWatcher(t, reloadBase, WatchOptions{Log: log.logf, Check: (*Registry).CheckProduction})
			before := w.Current()
			if !usable(before, "A") {
				t.Fatal("A should be usable before the update")
			}
			writeFile(t, p, content)
			changed, err := w.Poll()
			if !changed || err == nil {
				t.Fatalf("Poll = %v, %v; want a refusal that changes the registry", changed, err)
			}
			after := w.Current()
			if usable(after, "A") {
				t.Fatal("revocation carried by a refused file not applied")
			}
			if h, ok := after.ByID("A"); !ok || !h.Revoked || h.ActiveAt(reloadNow) {
				t.Errorf("A = %+v, %v: want kept, revoked", h, ok)
			}
			checkKept(t, before, after, "B", "C")
			if after.Len() != 3 {
				t.Errorf("Len = %d", after.Len())
			}
			if h, _ := before.ByID("A"); h.Revoked || !usable(before, "A") {
				t.Error("the previous registry was mutated")
			}
			checkStatus(t, w, StateRefused, 1)
			if n := log.count(); n != 1 || log.errs[0] == nil || !strings.Contains(log.msgs[0], `1 habilitation(s) revoked, removed or narrowed: "A"`) {
				t.Errorf("logs = %q %v", log.msgs, log.errs)
			}
			for _, v := range []string{"Zm9vYmFy", SandboxAPITokenSHA256, "client-", "Habilitation A"} {
				if strings.Contains(log.msgs[0]+log.errs[0].Error(), v) {
					t.Errorf("log echoes %q: %q %v", v, log.msgs[0], log.errs[0])
				}
			}
			// Polled again: nothing new, the error stays, no new log.
			if changed, err := w.Poll(); changed || err == nil || w.Current() != after || log.count() != 1 {
				t.Errorf("second Poll = %v, %v (logs %d)", changed, err, log.count())
			}
		})
	}
}

// TestC02_RefusedFileStillRemoves: a habilitation the refused file no longer
// lists (or lists without a readable id) is removed with its client ids and
// tokens.
func TestC02_RefusedFileStillRemoves(t *testing.T) {
	for name, content := range map[string]string{
		"A dropped":       regYAML(hab("B", badSIRET), hab("C", map[string]string{"revoked": "true"})),
		"A id unreadable": regYAML(hab("A", map[string]string{"id": "[A]"}), hab("B", nil), hab("C", map[string]string{"revoked": "true"})),
		"A not a mapping": "habilitations:\n  - A\n" + hab("B", nil) + hab("C", map[string]string{"revoked": "true", "foo": "1"}),
		"A null id":       regYAML(hab("A", map[string]string{"id": "~"}), hab("B", nil), hab("C", map[string]string{"revoked": "true"})),
	} {
		t.Run(name, func(t *testing.T) {
			w, p := startWatcher(t, reloadBase, WatchOptions{})
			before := w.Current()
			writeFile(t, p, content)
			if changed, err := w.Poll(); !changed || err == nil {
				t.Fatalf("Poll = %v, %v", changed, err)
			}
			after := w.Current()
			if _, ok := after.ByID("A"); ok {
				t.Error("A still in the registry")
			}
			if _, ok := after.ByClientID("client-A"); ok {
				t.Error("A's client id still paired")
			}
			if _, ok := after.ByAPIToken("pa_token-A"); ok {
				t.Error("A's API token still found")
			}
			checkKept(t, before, after, "B", "C")
			if after.Len() != 2 || len(after.All()) != 2 {
				t.Errorf("Len = %d", after.Len())
			}
			checkStatus(t, w, StateRefused, 1)
		})
	}
}

// TestC02_RefusedFileNarrows: a grant a refused file withdraws from a
// habilitation it still lists (a leaked API token's digest, a client id, a
// scope, a modality; an earlier end; a field that cannot be read) is
// withdrawn, whatever the file's unrelated error; the rest stays.
func TestC02_RefusedFileNarrows(t *testing.T) {
	base := regYAML(hab("A", map[string]string{"scopes": "[s1, s2]"}), hab("B", nil), hab("C", map[string]string{"revoked": "true"}))
	for name, tc := range map[string]struct {
		set   map[string]string
		check func(r *Registry, a *Habilitation) bool // true: narrowed as asked
	}{
		"token digest removed": {map[string]string{"api_token_sha256": "[]"}, func(r *Registry, a *Habilitation) bool {
			_, tok := r.ByAPIToken("pa_token-A")
			c, cli := r.ByClientID("client-A")
			return !tok && cli && c == a
		}},
		"token field dropped": {map[string]string{"api_token_sha256": "-"}, func(r *Registry, _ *Habilitation) bool {
			_, tok := r.ByAPIToken("pa_token-A")
			return !tok
		}},
		"token field unreadable": {map[string]string{"api_token_sha256": `"` + digestOf("pa_token-A") + `"`}, func(r *Registry, _ *Habilitation) bool {
			_, tok := r.ByAPIToken("pa_token-A")
			return !tok
		}},
		"client id removed": {map[string]string{"france_connect_client_ids": "[client-other]"}, func(r *Registry, a *Habilitation) bool {
			_, cli := r.ByClientID("client-A")
			_, other := r.ByClientID("client-other")
			return !cli && !other && len(a.FranceConnectClientIDs) == 0
		}},
		"scope removed": {map[string]string{"scopes": "[s1, s9]"}, func(_ *Registry, a *Habilitation) bool {
			return a.HasScope("s1") && !a.HasScope("s2") && !a.HasScope("s9")
		}},
		"modality removed": {map[string]string{"modalities": "[france_connect]"}, func(_ *Registry, a *Habilitation) bool {
			return a.Allows(ModalityFranceConnect) && !a.Allows(ModalityIdentite)
		}},
		"ends earlier": {map[string]string{"valid_until": "2026-02-01"}, func(_ *Registry, a *Habilitation) bool {
			return !a.ActiveAt(reloadNow)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			var log logRec
			w, p := startWatcher(t, base, WatchOptions{Log: log.logf})
			before := w.Current()
			writeFile(t, p, regYAML(hab("A", tc.set), hab("B", badSIRET), hab("C", map[string]string{"revoked": "true"})))
			if changed, err := w.Poll(); !changed || err == nil {
				t.Fatalf("Poll = %v, %v; want a refusal that narrows", changed, err)
			}
			after := w.Current()
			a, ok := after.ByID("A")
			if !ok || !tc.check(after, a) {
				t.Fatalf("A = %+v: not narrowed as the file asks", a)
			}
			if a0, _ := before.ByID("A"); !a0.HasScope("s2") || !usable(before, "A") {
				t.Error("the previous registry was mutated")
			}
			checkKept(t, before, after, "B", "C")
			checkStatus(t, w, StateRefused, 1)
			if log.count() != 1 || !strings.Contains(log.msgs[0], `1 habilitation(s) revoked, removed or narrowed: "A"`) {
				t.Errorf("logs = %q", log.msgs)
			}
		})
	}
}

// TestC02_RefusedFileNeverWidens: what a refused file adds (a habilitation,
// a scope, a client id, a token, a modality, a longer validity, an
// un-revocation) is not applied, even after an earlier refusal narrowed the
// registry.
func TestC02_RefusedFileNeverWidens(t *testing.T) {
	base := regYAML(hab("A", map[string]string{"valid_until": "2027-01-01"}), hab("B", nil), hab("C", map[string]string{"revoked": "true"}))
	w, p := startWatcher(t, base, WatchOptions{})
	before := w.Current()
	widen := regYAML(
		hab("A", map[string]string{
			"scopes":                    "[s1, s9]",
			"modalities":                "[france_connect, identite, identifiant]",
			"france_connect_client_ids": "[client-A, client-new]",
			"api_token_sha256":          `["` + digestOf("pa_token-A") + `", "` + digestOf("pa_new") + `"]`,
			"valid_until":               "2099-12-31",
		}),
		hab("B", badSIRET),
		hab("C", map[string]string{"revoked": "false"}),
		hab("D", nil),
	)
	writeFile(t, p, widen)
	if changed, err := w.Poll(); changed || err == nil || w.Current() != before {
		t.Fatalf("Poll = %v, %v: registry changed", changed, err)
	}
	checkStatus(t, w, StateRefused, 0)
	r := w.Current()
	a, _ := r.ByID("A")
	if a.HasScope("s9") || a.Allows(ModalityIdentifiant) || a.ValidUntil.Year() != 2027 {
		t.Error("A widened")
	}
	for _, probe := range []func() bool{
		func() bool { _, ok := r.ByID("D"); return ok },
		func() bool { _, ok := r.ByClientID("client-D"); return ok },
		func() bool { _, ok := r.ByClientID("client-new"); return ok },
		func() bool { _, ok := r.ByAPIToken("pa_new"); return ok },
		func() bool { return usable(r, "C") },
	} {
		if probe() {
			t.Error("access widened by a refused file")
		}
	}

	// A first refused file revokes A; a second one, still refused, no
	// longer does: A stays revoked.
	writeFile(t, p, regYAML(hab("A", map[string]string{"revoked": "true"}), hab("B", badSIRET), hab("C", map[string]string{"revoked": "true"})))
	if changed, err := w.Poll(); !changed || err == nil || usable(w.Current(), "A") {
		t.Fatalf("revocation not applied: %v, %v", changed, err)
	}
	writeFile(t, p, regYAML(hab("A", map[string]string{"revoked": "false"}), hab("B", map[string]string{"label": `""`}), hab("C", map[string]string{"revoked": "true"})))
	if changed, err := w.Poll(); changed || err == nil || usable(w.Current(), "A") {
		t.Fatalf("a refused file un-revoked A: %v, %v", changed, err)
	}
	checkStatus(t, w, StateRefused, 1)
	// The valid file that un-revokes A is applied as usual.
	writeFile(t, p, reloadBase)
	if changed, err := w.Poll(); !changed || err != nil || !usable(w.Current(), "A") {
		t.Fatalf("valid file not applied: %v, %v", changed, err)
	}
	checkStatus(t, w, StateOK, 0)
}

// TestC02_RefusedFileWithoutListKeepsRegistry: when the refused file has no
// readable habilitations list, nothing is inferred.
func TestC02_RefusedFileWithoutListKeepsRegistry(t *testing.T) {
	for i, content := range []string{
		"", "# nothing\n", "habilitations: [", "habilitations:", "habilitations: {}", "habilitations: 3",
		"- " + strings.TrimPrefix(hab("A", nil), "  - "), "foo: []", "\x00\xff",
		"x: &a [1]\nhabilitations: *a",
		reloadBase + "  - {id: A, revoked: true\n", // syntax error: nothing at all is read
	} {
		var log logRec
		w, p := startWatcher(t, reloadBase, WatchOptions{Log: log.logf})
		before := w.Current()
		writeFile(t, p, content)
		if changed, err := w.Poll(); changed || err == nil || w.Current() != before {
			t.Errorf("content %d: Poll = %v, %v, registry replaced: %v", i, changed, err, w.Current() != before)
		}
		checkStatus(t, w, StateRefused, 0)
		if log.count() != 1 || !strings.Contains(log.msgs[0], "nothing revoked or removed") {
			t.Errorf("content %d: logs %q", i, log.msgs)
		}
	}
}

// TestReadIntent: the lenient pass over refused files.
func TestReadIntent(t *testing.T) {
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		name, yaml      string
		listed, revoked []string // listed nil: removals not inferred
	}{
		{"revoked spellings", `habilitations:
  - {id: a, revoked: true}
  - {id: b, revoked: "True"}
  - {id: c, revoked: yes}
  - {id: d, revoked: On}
  - {id: e, revoked: false}
  - {id: f, revoked: ~}
  - {id: g, revoked: "no"}
  - {id: 7, revoked: Y}
  - {id: h, revoked: [true]}`, []string{"7", "a", "b", "c", "d", "e", "f", "g", "h"}, []string{"7", "a", "b", "c", "d"}},
		{"repeated id names both", "habilitations:\n  - {id: a, id: b, revoked: true}", []string{"a", "b"}, []string{"a", "b"}},
		{"repeated list key: revocations only", "habilitations:\n  - {id: a, revoked: true}\nhabilitations:\n  - {id: b, revoked: true}\n  - {id: c}", nil, []string{"a", "b"}},
		{"repeated key, one not a list", "habilitations: 3\nhabilitations:\n  - {id: b, revoked: true}", nil, []string{"b"}},
		{"alias item and alias id", "x: &i {id: z, revoked: true}\ny: &s q\nhabilitations:\n  - *i\n  - {id: *s, revoked: true}\n  - {id: b}", []string{"b"}, nil},
		{"first document only", "habilitations:\n  - {id: a}\n---\nhabilitations:\n  - {id: b, revoked: true}", []string{"a"}, nil},
		{"merge key ignored", "habilitations:\n  - {<<: {id: a}, revoked: true}", []string{}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, ok := readIntent([]byte(tt.yaml))
			if !ok {
				t.Fatal("no intent read")
			}
			if (tt.listed == nil) != (in.listed == nil) || !slices.Equal(keys(in.listed), tt.listed) {
				t.Errorf("listed = %v (nil %v), want %v", keys(in.listed), in.listed == nil, tt.listed)
			}
			if got := keys(in.revoked); !slices.Equal(got, tt.revoked) {
				t.Errorf("revoked = %v, want %v", got, tt.revoked)
			}
		})
	}
}

// TestC02_DeletedFileRemovesAll: a deleted file empties the registry (logged
// once, as an error); once back and valid, the file is applied, even with
// the content it had before.
func TestC02_DeletedFileRemovesAll(t *testing.T) {
	var log logRec
	w, p := startWatcher(t, reloadBase, WatchOptions{Log: log.logf})
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	changed, err := w.Poll()
	if !changed || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Poll = %v, %v", changed, err)
	}
	r := w.Current()
	if r == nil || r.Len() != 0 || usable(r, "A") || usable(r, "B") {
		t.Fatal("habilitations still served after the file was deleted")
	}
	checkStatus(t, w, StateMissing, 0)
	since := w.Status().Since
	if since.Before(t0) {
		t.Errorf("Since %v before the poll %v", since, t0)
	}
	if changed, err := w.Poll(); changed || err == nil || w.Current() != r {
		t.Errorf("second Poll = %v, %v", changed, err)
	}
	if log.count() != 1 || log.errs[0] == nil || !strings.Contains(log.msgs[0], "missing") {
		t.Errorf("logs = %q %v", log.msgs, log.errs)
	}
	if w.Status().Since != since {
		t.Error("Since moved while the state did not change")
	}
	// Back with the same content as before the deletion: applied.
	writeFile(t, p, reloadBase)
	if changed, err := w.Poll(); !changed || err != nil || !usable(w.Current(), "A") || w.Current().Len() != 3 {
		t.Fatalf("restored file: Poll = %v, %v", changed, err)
	}
	checkStatus(t, w, StateOK, 0)
	// Deleted again, then back as a refused file: nothing to restore from.
	_ = os.Remove(p)
	_, _ = w.Poll()
	writeFile(t, p, regYAML(hab("A", badSIRET)))
	if changed, err := w.Poll(); changed || err == nil || w.Current().Len() != 0 {
		t.Fatalf("refused file after deletion: %v, %v, Len %d", changed, err, w.Current().Len())
	}
	checkStatus(t, w, StateRefused, 0)
}

// TestC02_UnreadableFileKeepsRegistry: a read error other than a missing
// file (here, a directory in place of the file: the tests run as root, so
// permissions would not do) keeps the registry in force.
func TestC02_UnreadableFileKeepsRegistry(t *testing.T) {
	var log logRec
	w, p := startWatcher(t, reloadBase, WatchOptions{Log: log.logf})
	before := w.Current()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		changed, err := w.Poll()
		if changed || err == nil || errors.Is(err, fs.ErrNotExist) || w.Current() != before {
			t.Fatalf("Poll = %v, %v", changed, err)
		}
		checkStatus(t, w, StateUnreadable, 0)
	}
	if log.count() != 1 || log.errs[0] == nil || !strings.Contains(log.msgs[0], "unreadable, previous registry kept") {
		t.Errorf("logs = %q", log.msgs)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, reloadBase)
	if changed, err := w.Poll(); changed || err != nil || w.Current() != before {
		t.Fatalf("same file back: Poll = %v, %v", changed, err)
	}
	checkStatus(t, w, StateOK, 0)
}

// TestC02_FIFONeverBlocksThePoll: a FIFO in place of the file (whose open
// would block the poll, and every later reload with it) is unreadable at
// once; the registry in force stays.
func TestC02_FIFONeverBlocksThePoll(t *testing.T) {
	w, p := startWatcher(t, reloadBase, WatchOptions{})
	before := w.Current()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := w.Poll(); done <- err }()
	select {
	case err := <-done:
		if err == nil || w.Current() != before {
			t.Fatalf("Poll on a FIFO: %v", err)
		}
		checkStatus(t, w, StateUnreadable, 0)
	case <-time.After(5 * time.Second):
		t.Fatal("Poll blocked on a FIFO")
	}
	if _, err := NewWatcher(p, time.Second, WatchOptions{}); err == nil {
		t.Fatal("a FIFO accepted as a registry at start")
	}
}

// TestC02_CheckAtStart: a registry the check refuses does not start.
func TestC02_CheckAtStart(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.yaml")
	data, err := os.ReadFile(sandboxFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, string(data))
	if _, err := NewWatcher(p, 0, WatchOptions{Check: (*Registry).CheckProduction}); err == nil || !strings.Contains(err.Error(), "refused in production") {
		t.Fatalf("sandbox registry started in production: %v", err)
	}
	calls := 0
	check := func(r *Registry) error { calls++; return errors.New("no") }
	writeFile(t, p, reloadBase)
	if _, err := NewWatcher(p, 0, WatchOptions{Check: check}); err == nil || calls != 1 {
		t.Fatalf("check failure at start: %v, %d calls", err, calls)
	}
	if _, err := NewWatcher(p, 0, WatchOptions{Check: (*Registry).CheckProduction}); err != nil {
		t.Fatalf("production registry refused: %v", err)
	}
}

// TestC02_CheckOnReload: a reload the check refuses is treated as a refused
// file: not applied, its revocations and removals applied.
func TestC02_CheckOnReload(t *testing.T) {
	var log logRec
	fail := false
	check := func(r *Registry) error {
		if fail {
			return errors.New("refused by policy")
		}
		return nil
	}
	w, p := startWatcher(t, reloadBase, WatchOptions{Log: log.logf, Check: check})
	before := w.Current()
	fail = true
	// Valid YAML that revokes A, drops C and widens B: only the narrowing
	// applies.
	writeFile(t, p, regYAML(hab("A", map[string]string{"revoked": "true"}), hab("B", map[string]string{"scopes": "[s1, s9]"})))
	changed, err := w.Poll()
	if !changed || err == nil || !strings.Contains(err.Error(), "refused by policy") {
		t.Fatalf("Poll = %v, %v", changed, err)
	}
	r := w.Current()
	if usable(r, "A") {
		t.Error("revocation not applied")
	}
	if _, ok := r.ByID("C"); ok {
		t.Error("removal not applied")
	}
	if b, _ := r.ByID("B"); b.HasScope("s9") {
		t.Error("scope added by a refused file")
	}
	checkKept(t, before, r, "B")
	checkStatus(t, w, StateRefused, 2)
	if log.count() != 1 || !strings.Contains(log.msgs[0], `2 habilitation(s) revoked, removed or narrowed: "A", "C"`) {
		t.Errorf("logs = %q", log.msgs)
	}
}

// Status and Current are safe while Poll runs (go test -race).
func TestWatcherStatusConcurrent(t *testing.T) {
	w, p := startWatcher(t, reloadBase, WatchOptions{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st := w.Status()
				if st.State == "" || w.Current() == nil {
					t.Error("empty status or nil registry")
					return
				}
			}
		}()
	}
	for i := range 30 {
		switch i % 3 {
		case 0:
			writeFile(t, p, regYAML(hab("A", badSIRET)))
		case 1:
			_ = os.Remove(p)
		default:
			writeFile(t, p, reloadBase)
		}
		_, _ = w.Poll()
	}
	close(stop)
	wg.Wait()
}
