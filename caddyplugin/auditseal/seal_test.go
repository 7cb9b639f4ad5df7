package auditseal

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// newTestSealer returns a sealer of testKey under a key id of its own (the
// sequences are the process's).
func newTestSealer(t testing.TB) (*Sealer, string) {
	t.Helper()
	id := fmt.Sprintf("t%d-%s", len(t.Name()), strings.NewReplacer("/", ".", " ", "_", "#", ".").Replace(t.Name()))
	if len(id) > 32 {
		id = id[len(id)-32:]
	}
	s, err := NewSealer(testKey, id)
	if err != nil {
		t.Fatal(err)
	}
	return s, id
}

// trail seals records, one a line, as an encoder writes them.
func trail(s *Sealer, records ...string) [][]byte {
	var lines [][]byte
	for _, r := range records {
		line, _ := s.Seal(nil, []byte(r+"\n"))
		lines = append(lines, line)
	}
	return lines
}

func verify(t *testing.T, keyID string, lines [][]byte) Report {
	t.Helper()
	return verifyWith(t, Options{Keys: map[string][][]byte{keyID: {testKey}}}, lines)
}

func verifyWith(t *testing.T, o Options, lines [][]byte) Report {
	t.Helper()
	v := NewVerifier(o)
	if err := v.Read("audit.log", bytes.NewReader(bytes.Join(lines, nil))); err != nil {
		t.Fatal(err)
	}
	return v.Report()
}

func records(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(`{"level":"info","logger":"passerelle.audit","decision":"allow","request_id":"r-%d"}`, i))
	}
	return out
}

// TestSealedTrailVerifies: a trail as sealed verifies whole, records of
// every shape the encoder writes included, and the sequence runs 1 to n.
func TestSealedTrailVerifies(t *testing.T) {
	s, id := newTestSealer(t)
	lines := trail(s, append(records(3), `{}`, `{"msg":"line end \"}\n"}`)...)
	crlf, _ := s.Seal(nil, []byte(`{"crlf":true}`+"\r\n"))
	lines = append(lines, crlf)
	r := verify(t, id, lines)
	if !r.OK() || r.Lines != 6 || r.Verified != 6 || len(r.Streams) != 1 || r.Streams[0].First != 1 || r.Streams[0].Last != 6 {
		t.Fatalf("%+v", r)
	}
	if !bytes.HasPrefix(lines[3], []byte(`{"seal_key":"`)) || !bytes.HasSuffix(lines[0], []byte("\"}\n")) {
		t.Fatalf("sealed lines: %s %s", lines[3], lines[0])
	}
	if n := Sealed(id); n != 6 {
		t.Fatalf("Sealed(%s) = %d", id, n)
	}
}

// TestTamperedTrail: every change to a sealed trail is caught: an altered
// field or seal field, a forged record, a removed, replayed or unsealed
// one, a record under a key the verifier does not hold; records merely
// out of order (two batches around a reload) are not a failure.
func TestTamperedTrail(t *testing.T) {
	s, id := newTestSealer(t)
	forger, err := NewSealer([]byte("another key of the attacker's, 32 bytes at least"), id+"x")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSealer(testKey, "other-key-id-of-"+id[:min(len(id), 10)])
	if err != nil {
		t.Fatal(err)
	}
	base := trail(s, records(6)...)
	edit := func(f func(l [][]byte) [][]byte) [][]byte {
		c := make([][]byte, len(base))
		for i := range base {
			c[i] = bytes.Clone(base[i])
		}
		return f(c)
	}
	for _, tc := range []struct {
		name    string
		lines   [][]byte
		kind    string  // the problem, at line
		line    int     // 1-based
		missing []Range // in the stream
	}{
		{"a decision changed", edit(func(l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"allow"`), []byte(`"deny"`), 1)
			return l
		}), KindAltered, 3, []Range{{3, 3}}}, // an altered record counts for none
		{"a sequence number changed", edit(func(l [][]byte) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(`"seal_seq":`), []byte(`"seal_seq":1`), 1)
			return l
		}), KindAltered, 2, []Range{{2, 2}}},
		{"a record's time changed", edit(func(l [][]byte) [][]byte {
			l[3] = bytes.Replace(l[3], []byte(`"seal_at":`), []byte(`"seal_at":1`), 1)
			return l
		}), KindAltered, 4, []Range{{4, 4}}},
		{"a process's start changed", edit(func(l [][]byte) [][]byte {
			i := bytes.Index(l[2], []byte(`"seal_boot":"`)) + len(`"seal_boot":"`)
			l[2][i] = '0' // back by years
			if bytes.HasPrefix(base[2][i:], []byte("0")) {
				l[2][i] = '1'
			}
			return l
		}), KindAltered, 3, []Range{{3, 3}}},
		{"a record removed", edit(func(l [][]byte) [][]byte { return slices.Delete(l, 3, 4) }), "", 0, []Range{{4, 4}}},
		{"two records removed", edit(func(l [][]byte) [][]byte { return slices.Delete(l, 1, 3) }), "", 0, []Range{{2, 3}}},
		{"a record replayed", edit(func(l [][]byte) [][]byte { return append(l, l[0]) }), KindDuplicate, 7, nil},
		{"a record forged under another key", edit(func(l [][]byte) [][]byte {
			f := trail(forger, `{"decision":"allow"}`)[0]
			f = bytes.Replace(f, []byte(`"seal_key":"`+id+`x"`), []byte(`"seal_key":"`+id+`"`), 1)
			return append(l, f)
		}), KindAltered, 7, nil},
		{"an unsealed record", edit(func(l [][]byte) [][]byte { return append(l, []byte(`{"decision":"allow"}`+"\n")) }), KindUnsealed, 7, nil},
		{"a seal cut short", edit(func(l [][]byte) [][]byte {
			l[0] = append(bytes.Clone(l[0][:len(l[0])-5]), "\"}\n"...)
			return l
		}), KindUnsealed, 1, nil},
		{"the MAC in upper case", edit(func(l [][]byte) [][]byte {
			i := bytes.LastIndex(l[5], []byte(macField)) + len(macField)
			copy(l[5][i:], bytes.ToUpper(l[5][i:i+macHexLen]))
			return l
		}), KindUnsealed, 6, nil},
		{"a second carriage return", edit(func(l [][]byte) [][]byte {
			l[5] = append(bytes.TrimSuffix(l[5], []byte("\n")), "\r\r\n"...)
			return l
		}), KindUnsealed, 6, nil},
		{"a key the verifier does not hold", edit(func(l [][]byte) [][]byte { return append(l, trail(other, `{"a":1}`)...) }), KindUnknownKey, 7, nil},
		{"out of order", edit(func(l [][]byte) [][]byte { l[1], l[4] = l[4], l[1]; return l }), "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, id, tc.lines)
			if tc.kind != "" && (len(r.Problems) != 1 || r.Problems[0] != Problem{"audit.log", tc.line, tc.kind}) {
				t.Fatalf("problems %+v, want %s at line %d", r.Problems, tc.kind, tc.line)
			}
			if tc.kind == "" && len(r.Problems) != 0 {
				t.Fatalf("problems %+v, want none", r.Problems)
			}
			if len(r.Streams) != 1 || !slices.Equal(r.Streams[0].Missing, tc.missing) {
				t.Fatalf("streams %+v, want missing %v", r.Streams, tc.missing)
			}
			if ok := tc.kind == "" && tc.missing == nil; r.OK() != ok {
				t.Fatalf("OK() = %v, want %v", r.OK(), ok)
			}
		})
	}
}

// TestEmptyTrailFails: files that hold no record, emptied or with every
// line blanked (a wiped trail), or only records that fail, are not a trail
// that holds: a periodic verification that reads its exit status alerts.
//
// req: G09
func TestEmptyTrailFails(t *testing.T) {
	s, id := newTestSealer(t)
	line := trail(s, records(1)...)[0]
	blanked := bytes.Repeat([]byte(" "), len(line)-1)
	for name, lines := range map[string][][]byte{
		"no file content":        nil,
		"blank lines":            {[]byte("\n"), []byte("  \r\n")},
		"a record blanked":       {append(blanked, '\n')},
		"only an altered record": {bytes.Replace(line, []byte(`"allow"`), []byte(`"deny"`), 1)},
	} {
		if r := verify(t, id, lines); r.OK() {
			t.Errorf("%s: OK %+v", name, r)
		}
	}
	if r := verify(t, id, [][]byte{line}); !r.OK() {
		t.Fatalf("one sealed record: %+v", r)
	}
}

// TestProcessBoundaries: a stream whose process started after the trail's
// first record (seal_boot, seal_at) must start at 1, so that records
// removed around a restart, the end of one process and the start of the
// next, are missing, whatever the order of the lines; a process that
// started before may start later (the oldest files gone with the
// retention, or several instances' trails merged and cut at a window's
// start), and so may one that started within MaxClockSkew of it.
func TestProcessBoundaries(t *testing.T) {
	_, id := newTestSealer(t)
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // the trail's first record
	// process seals 5 records, a second apart from first, as a process
	// started at started.
	process := func(started, first time.Time) [][]byte {
		s := newSealer(testKey, id, streamBegun(started))
		at := first.Add(-time.Second)
		s.now = func() time.Time { at = at.Add(time.Second); return at }
		return trail(s, records(5)...)
	}
	a := process(t0.Add(-time.Hour), t0)                         // began before the trail
	c := process(t0.Add(-30*time.Minute), t0.Add(time.Second))   // another instance, the same
	b := process(t0.Add(30*time.Second), t0.Add(40*time.Second)) // a restart within the trail
	d := process(t0.Add(MaxClockSkew), t0.Add(20*time.Second))   // started within the clock skew
	join := func(parts ...[][]byte) [][]byte { return slices.Concat(parts...) }
	for _, tc := range []struct {
		name    string
		lines   [][]byte
		missing [][]Range // by stream, in the order first seen
	}{
		{"two processes whole", join(a, b), [][]Range{nil, nil}},
		{"the end of one and the start of the next removed", join(a[:3], b[2:]), [][]Range{nil, {{1, 2}}}},
		{"the trail begins within the first process", join(a[2:], b), [][]Range{nil, nil}},
		{"two processes begun before the trail", join(a[2:], c[3:], b), [][]Range{nil, nil, nil}},
		{"a restart's first records removed, the rest moved first", join(b[3:], a), [][]Range{{{1, 3}}, nil}},
		{"the same in a window of merged trails", join(a[2:], c[3:], b[3:]), [][]Range{nil, nil, {{1, 3}}}},
		{"the same with the restart's records alone in a file of their own", join(b[3:], c[1:]), [][]Range{{{1, 3}}, nil}},
		{"a process started within the clock skew of the trail's start", join(a[1:], d[2:]), [][]Range{nil, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, id, tc.lines)
			var got [][]Range
			ok := len(r.Problems) == 0
			for _, s := range r.Streams {
				got = append(got, s.Missing)
				ok = ok && s.Missing == nil
			}
			if !slices.EqualFunc(got, tc.missing, slices.Equal) || r.OK() != ok {
				t.Fatalf("missing %v (OK %v), want %v", got, r.OK(), tc.missing)
			}
		})
	}
	r := verify(t, id, a)
	if got := r.Streams[0].Started; !got.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("started %v, want %v", got, t0.Add(-time.Hour))
	}
}

// TestStreamBoundaries: the second review's cases. A key rotation begins a
// stream within the process, which must start at 1 like a restart's;
// --since moves the trail's start for merged trails cut at different
// times; a clock stepped back after a stream began does not make its
// stream look younger than its own records.
func TestStreamBoundaries(t *testing.T) {
	_, id := newTestSealer(t)
	id2 := "r-" + id[max(0, len(id)-20):]
	keys := map[string][][]byte{id: {testKey}, id2: {testKey}}
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	stream := func(keyID string, begun, first time.Time) [][]byte {
		s := newSealer(testKey, keyID, streamBegun(begun))
		at := first.Add(-time.Second)
		s.now = func() time.Time { at = at.Add(time.Second); return at }
		return trail(s, records(5)...)
	}
	old := stream(id, t0.Add(-time.Hour), t0)                         // the process, under the old key
	rotated := stream(id2, t0.Add(time.Minute), t0.Add(time.Minute))  // the same process after a rotation
	y := stream(id, t0.Add(time.Minute), t0.Add(2*time.Minute))       // another instance's process, cut by its retention
	stepped := stream(id, t0.Add(time.Hour), t0.Add(-30*time.Second)) // began at t0+1h by a clock then stepped back
	for _, tc := range []struct {
		name    string
		since   time.Time
		lines   [][]byte
		missing [][]Range
	}{
		{"a rotation whole", time.Time{}, slices.Concat(old, rotated), [][]Range{nil, nil}},
		{"the last records of the old key and the first of the new removed", time.Time{}, slices.Concat(old[:3], rotated[2:]), [][]Range{nil, {{1, 2}}}},
		{"merged trails cut at different times", time.Time{}, slices.Concat(old, y[2:]), [][]Range{nil, {{1, 2}}}},
		{"the same, from the latest of their oldest records", t0.Add(3 * time.Minute), slices.Concat(old, y[2:]), [][]Range{nil, nil}},
		{"a restart within the window given", t0.Add(-time.Minute), slices.Concat(old, y[2:]), [][]Range{nil, {{1, 2}}}},
		{"a clock stepped back", time.Time{}, slices.Concat(stepped[2:], old), [][]Range{nil, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := verifyWith(t, Options{Keys: keys, Since: tc.since}, tc.lines)
			var got [][]Range
			for _, s := range r.Streams {
				got = append(got, s.Missing)
			}
			if len(r.Problems) != 0 || !slices.EqualFunc(got, tc.missing, slices.Equal) {
				t.Fatalf("missing %v, problems %v; want %v", got, r.Problems, tc.missing)
			}
		})
	}
}

// TestStreamPerKeyID: each key id the process seals under is a stream of
// its own, with its own boot id, begun when it seals its first record, not
// when its sealer is made (a configuration refused later, or a quiet log,
// would otherwise date it before the trail).
func TestStreamPerKeyID(t *testing.T) {
	first, id := newTestSealer(t)
	other := "o-" + id[max(0, len(id)-20):]
	second, err := NewSealer(testKey, other)
	if err != nil {
		t.Fatal(err)
	}
	if Boot(id) != "" || Boot(other) != "" {
		t.Fatalf("streams begun before their first record: %q %q", Boot(id), Boot(other))
	}
	trail(first, records(1)...)
	time.Sleep(1100 * time.Millisecond) // the boot's clock counts seconds
	before := time.Now().Truncate(time.Second)
	trail(second, records(1)...)
	if Boot(id) == "" || Boot(other) == "" || Boot(id) == Boot(other) {
		t.Fatalf("boots %q and %q", Boot(id), Boot(other))
	}
	if b := started(Boot(other)); b.Before(before) || b.After(time.Now()) {
		t.Fatalf("the stream of %s begun %v, its first record at %v", other, b, before)
	}
	if Boot("never-used") != "" {
		t.Fatal("a boot for a key id never sealed under")
	}
}

// streamBegun returns a stream begun at t, as another process's.
func streamBegun(t time.Time) *sealStream {
	s := new(sealStream)
	b := bootID(t)
	s.boot.Store(&b)
	return s
}

// TestSequenceSharedAcrossSealers: the sealers of one key id (the
// configurations before and after a reload) number one stream, even when
// their records reach the trail out of order.
func TestSequenceSharedAcrossSealers(t *testing.T) {
	before, id := newTestSealer(t)
	after, err := NewSealer(testKey, id)
	if err != nil {
		t.Fatal(err)
	}
	a := trail(before, records(2)...)
	b := trail(after, records(2)...)
	c := trail(before, records(1)...) // the old configuration's last batch, written late
	r := verify(t, id, append(append(a, b...), c...))
	if !r.OK() || len(r.Streams) != 1 || r.Streams[0].Last != 5 {
		t.Fatalf("%+v", r)
	}
}

// TestKeyIDBoundToItsKey: once the process sealed a record under a key id,
// a configuration that brings another key under the same id (a key file
// rotated, its key_id kept) is refused: its records would continue the
// stream under a second key, and a trail verifies with one key per key
// id, so every record under either key would read as altered. The same
// key again (a reload) is taken, and so is another key under an id that
// sealed nothing yet (a configuration refused before its first record).
//
// req: G09
func TestKeyIDBoundToItsKey(t *testing.T) {
	s, id := newTestSealer(t)
	otherKey := []byte("fedcba9876543210fedcba9876543210-other-key")
	if _, err := NewSealer(otherKey, id+"q"); err != nil { // nothing sealed under it yet
		t.Fatalf("another key under a quiet id: %v", err)
	}
	first := trail(s, records(2)...)
	if _, err := NewSealer(otherKey, id); err != ErrKeyIDReused {
		t.Fatalf("another key under a used id: %v, want ErrKeyIDReused", err)
	}
	again, err := NewSealer(testKey, id)
	if err != nil {
		t.Fatalf("the same key again: %v", err)
	}
	if r := verify(t, id, append(first, trail(again, records(1)...)...)); !r.OK() || r.Verified != 3 {
		t.Fatalf("%+v", r)
	}
}

// TestMissingRanges: late records fill the gaps they belong to; those
// that never come stay missing, as ranges.
func TestMissingRanges(t *testing.T) {
	for _, tc := range []struct {
		seqs    []uint64
		missing []Range
		dups    int
	}{
		{[]uint64{1, 2, 3}, nil, 0},
		{[]uint64{1, 5, 3}, []Range{{2, 2}, {4, 4}}, 0},
		{[]uint64{1, 9, 2, 8, 5}, []Range{{3, 4}, {6, 7}}, 0},
		{[]uint64{5, 3, 1}, []Range{{2, 2}, {4, 4}}, 0},
		{[]uint64{4, 4, 2, 2}, []Range{{3, 3}}, 2},
		{[]uint64{1, 10, 5, 5}, []Range{{2, 4}, {6, 9}}, 1},
	} {
		v := NewVerifier(Options{})
		dups := 0
		boot := bootID(time.Unix(0, 0)) // before the trail: the stream may start late
		for _, n := range tc.seqs {
			if !v.sequence(streamID{"k", boot}, n, 0) {
				dups++
			}
		}
		s := v.Report().Streams[0]
		if !slices.Equal(s.Missing, tc.missing) || dups != tc.dups {
			t.Errorf("%v: missing %v, %d duplicates; want %v, %d", tc.seqs, s.Missing, dups, tc.missing, tc.dups)
		}
	}
}

// TestSealerRefuses: short keys, bad key ids, lines that are not one JSON
// object (passed unchanged, reported).
func TestSealerRefuses(t *testing.T) {
	if _, err := NewSealer([]byte("short"), "k1"); err != ErrKeyTooShort {
		t.Fatalf("short key: %v", err)
	}
	for _, id := range []string{"", "a b", `a"b`, strings.Repeat("a", 33), "é"} {
		if _, err := NewSealer(testKey, id); err != ErrKeyID {
			t.Errorf("key id %q: %v", id, err)
		}
	}
	s, _ := newTestSealer(t)
	for _, line := range []string{"", "\n", "text\n", "{\n", `{"a":1} trailing` + "\n", "[1]\n"} {
		if out, ok := s.Seal(nil, []byte(line)); ok || string(out) != line {
			t.Errorf("%q: sealed %q", line, out)
		}
	}
}

// TestVerifierRefusesLongLines: a line beyond MaxLineBytes stops the
// verification with an error naming its line.
func TestVerifierRefusesLongLines(t *testing.T) {
	v := NewVerifier(Options{})
	in := "{}\n" + strings.Repeat("a", MaxLineBytes+1) + "\n"
	if err := v.Read("f", strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("%v", err)
	}
}

// FuzzVerify: any input is read without panic and never verifies a line
// it was not given sealed; a sealed record verifies, and any one byte
// changed in it does not.
func FuzzVerify(f *testing.F) {
	s, err := NewSealer(testKey, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := s.Seal(nil, []byte(`{"decision":"allow"}`+"\n"))
	for _, seed := range []string{
		"", "\n\n", "{}", `{"a":1}`, string(sealed), string(sealed) + string(sealed),
		strings.Replace(string(sealed), "allow", "deny", 1),
		`{"seal_key":"fuzz","seal_boot":"0123456789abcdef","seal_at":1796651323417,"seal_seq":1,"seal":"` + strings.Repeat("0", 64) + `"}`,
		`{"seal_key":"fuzz","seal_boot":"0123456789abcdef","seal_at":1796651323417,"seal_seq":01,"seal":"` + strings.Repeat("0", 64) + `"}`,
		`,"seal":"` + strings.Repeat("z", 64) + `"}`,
		`{"x":"\"seal_key\":\"fuzz\""}`,
		"\r\n{\"a\":1}\r\n",
	} {
		f.Add([]byte(seed), uint(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, at uint) {
		v := NewVerifier(Options{Keys: map[string][][]byte{"fuzz": {testKey}}})
		_ = v.Read("f", bytes.NewReader(data))
		if r := v.Report(); r.Verified > r.Lines {
			t.Fatalf("%d verified of %d lines", r.Verified, r.Lines)
		}
		record, err := jsonRecord(data)
		if err != nil {
			return
		}
		line, ok := s.Seal(nil, record)
		if !ok {
			t.Fatalf("a JSON object line not sealed: %q", record)
		}
		v = NewVerifier(Options{Keys: map[string][][]byte{"fuzz": {testKey}}})
		if err := v.Read("f", bytes.NewReader(line)); err != nil || v.Report().Verified != 1 {
			t.Fatalf("a sealed record does not verify: %q %v", line, err)
		}
		i := int(at % uint(len(line)-1)) // not the line end
		changed := bytes.Clone(line)
		changed[i] ^= 0x01
		v = NewVerifier(Options{Keys: map[string][][]byte{"fuzz": {testKey}}})
		if err := v.Read("f", bytes.NewReader(changed)); err == nil && v.Report().Verified != 0 {
			t.Fatalf("byte %d changed, still verified: %q", i, changed)
		}
	})
}

// jsonRecord makes a one-line JSON object of arbitrary bytes, as an
// encoder would write a field holding them.
func jsonRecord(data []byte) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"msg":`)
	q := fmt.Sprintf("%q", data) // Go quoting escapes quotes, line ends and controls
	if strings.ContainsAny(q, "\n\r") {
		return nil, fmt.Errorf("line end in %q", q)
	}
	b.WriteString(q)
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// BenchmarkSeal is what sealing adds to one audit record of the usual
// size (an allowed FranceConnect call's, ~650 bytes).
func BenchmarkSeal(b *testing.B) {
	s, err := NewSealer(testKey, "bench")
	if err != nil {
		b.Fatal(err)
	}
	record := []byte(`{"level":"info","ts":1796632606.8558002,"logger":"passerelle.audit","msg":"access decision","time":"2026-12-07T08:36:46.854Z","request_id":"09ecb454-b97b-4c3d-bf4e-cd4f25ddee5f","trace_id":"","instance":"vm","endpoint":"dss_quotient_familial_fc","method":"GET","decision":"allow","code":"","reason":"","provider":"CNAV","provider_status":200,"latency_ms":1,"client_id":"6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950","acr":"eidas1","citizen_key":"0ba96e4e1e164661b064de7b92e398ae4cfee4d6d28fce79763ed8b69aca28fd","citizen_key_basis":"sub","pseudonym_key_version":"v1","habilitation_id":"sandbox-toutes-donnees","scopes":["cnaf_quotient_familial","cnaf_allocataires","cnaf_enfants","cnaf_adresse"]}` + "\n")
	dst := make([]byte, 0, 2048)
	b.SetBytes(int64(len(record)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = s.Seal(dst[:0], record)
	}
}
