package catalogue

import (
	"runtime"
	"strings"
	"testing"
)

// TestNameLengthIsACheck: a name parameter of the default catalogue takes
// 100 letters, not 101, whatever their UTF-8 width; the bound is MaxLength,
// not a counted repetition in the pattern.
func TestNameLengthIsACheck(t *testing.T) {
	c := mustDefault(t)
	p, ok := c.Endpoints[0].Param("nomNaissance")
	for i := 0; !ok && i < len(c.Endpoints); i++ {
		p, ok = c.Endpoints[i].Param("nomNaissance")
	}
	if !ok {
		t.Fatal("no route with nomNaissance")
	}
	if p.MaxLength != 100 || strings.Contains(p.Pattern, "{0,") {
		t.Fatalf("nomNaissance: max_length %d, pattern %q", p.MaxLength, p.Pattern)
	}
	for _, letter := range []string{"A", "É", "𝔄"} { // 1, 2 and 4 bytes
		if v := strings.Repeat(letter, 100); !p.Valid(v) {
			t.Errorf("100 × %q refused", letter)
		}
		if v := strings.Repeat(letter, 101); p.Valid(v) {
			t.Errorf("101 × %q accepted", letter)
		}
	}
}

// TestPatternsSharedAcrossRoutesAndLoads: each distinct pattern is
// compiled once, whatever the number of routes using it or of catalogues
// loaded while it lives.
func TestPatternsSharedAcrossRoutesAndLoads(t *testing.T) {
	a, b := mustDefault(t), mustDefault(t)
	seen := map[string]*Param{}
	shared := 0
	for _, c := range []*Catalogue{a, b} {
		for i := range c.Endpoints {
			for j := range c.Endpoints[i].Params {
				p := &c.Endpoints[i].Params[j]
				if p.Pattern == "" {
					continue
				}
				if first, ok := seen[p.Pattern]; ok {
					if first.re != p.re {
						t.Fatalf("pattern %q compiled twice", p.Pattern)
					}
					shared++
					continue
				}
				seen[p.Pattern] = p
			}
		}
	}
	if shared < 100 {
		t.Fatalf("only %d shared uses of %d distinct patterns", shared, len(seen))
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

// TestLargePatternRefused: a counted repetition of a Unicode class, which
// compiles to megabytes, is refused with a message pointing at max_length;
// the same bound written with max_length loads.
func TestLargePatternRefused(t *testing.T) {
	doc := func(param string) string {
		return `
providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: qf_identite
    path: /v3/x/identite
    modality: identite
    operation_id: op_x
    provider: CNAV
    upstream_path: /v3/x/identite
    params: [` + param + `, {name: numero, identifier: test}]
    scopes: [{name: s, basis: doc, fields: [data.x]}]
`
	}
	_, err := Parse([]byte(doc(`{name: nom, normalize: name, pattern: "^[\\p{L}][\\p{L}' -]{0,99}$"}`)))
	if err == nil || !strings.Contains(err.Error(), "params[0].pattern") || !strings.Contains(err.Error(), "max_length") {
		t.Fatalf("counted repetition of a Unicode class: %v", err)
	}
	if _, err := Parse([]byte(doc(`{name: nom, normalize: name, pattern: "^[\\p{L}][\\p{L}' -]*$", max_length: 100}`))); err != nil {
		t.Fatalf("max_length form refused: %v", err)
	}
	if _, err := Parse([]byte(doc(`{name: nom, max_length: 501}`))); err == nil || !strings.Contains(err.Error(), "max_length") {
		t.Fatalf("max_length 501: %v", err)
	}
	// ASCII repetitions stay small and are accepted.
	if _, err := Parse([]byte(doc(`{name: nom, pattern: "^[0-9A-Z]{1,20}$"}`))); err != nil {
		t.Fatalf("small counted repetition refused: %v", err)
	}
}

// TestPatternMatchesWholeValue: a parameter's pattern must match the whole
// value, whatever its text: "^…$" around a top-level alternation anchors
// only its first and last branch, and a multi-line flag turns "$" into an
// end of line. A value the pattern does not wholly describe (a newline and
// more after it, anything before a last branch) never reaches a provider.
func TestPatternMatchesWholeValue(t *testing.T) {
	doc := func(pattern string) string {
		return `
providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: r
    path: /v3/r/identifiant
    modality: identifiant
    operation_id: r
    provider: CNAV
    upstream_path: /v3/r/identifiant
    params: [{name: numero, required: true, identifier: test, pattern: '` + pattern + `'}]
    scopes: [{name: s, basis: doc, fields: [data.x]}]
`
	}
	for _, tc := range []struct {
		pattern  string
		ok, nook []string
	}{
		{`^[0-9]{8}|[A-Z]{3}$`, []string{"12345678", "ABC"}, []string{"12345678&recipient=1", "x=1&ABC"}},
		{`^(?m)[0-9]{8}$`, []string{"12345678"}, []string{"12345678\nother"}},
	} {
		c, err := Parse([]byte(doc(tc.pattern)))
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		p, _ := c.Endpoints[0].Param("numero")
		for _, v := range tc.ok {
			if !p.Valid(v) {
				t.Errorf("%s: %q refused", tc.pattern, v)
			}
		}
		for _, v := range tc.nook {
			if p.Valid(v) {
				t.Errorf("%s: %q accepted", tc.pattern, v)
			}
		}
	}
}

// TestDefaultCatalogueRetainedHeap bounds the memory a loaded default
// catalogue keeps: it is loaded again on every configuration reload, and
// its compiled patterns once took 140 MB (issue 8).
func TestDefaultCatalogueRetainedHeap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("default catalogue retains %d KiB", retained/1024)
	if retained > 8<<20 {
		t.Errorf("the default catalogue retains %d MiB, want at most 8", retained>>20)
	}
	runtime.KeepAlive(c)
}

// BenchmarkDefaultCatalogueLoad reports the cost of loading the embedded
// catalogue, as every configuration load and reload does.
func BenchmarkDefaultCatalogueLoad(b *testing.B) {
	b.ReportAllocs()
	keep, err := Default() // patterns stay shared while a catalogue lives, as across reloads
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.KeepAlive(keep)
}
