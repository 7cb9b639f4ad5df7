package respfilter

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidPath(t *testing.T) {
	ok := []string{
		"data", "links", "meta",
		"data.quotient_familial",
		"data.allocataires",
		"data.statut_boursier",
		"data.admissions[].est_inscrit",
		"data.statut_actuel.organisme_accueil",
		"meta.identity_matching",
		"data.x[]", "data.m[][].a", "data.Key-9_z",
	}
	for _, p := range ok {
		if err := ValidPath(p); err != nil {
			t.Errorf("ValidPath(%q) = %v", p, err)
		}
	}
	bad := map[string]error{
		"":                  errEmptyPath,
		".":                 errEmptySegment,
		"data.":             errEmptySegment,
		".data":             errEmptySegment,
		"data..x":           errEmptySegment,
		"data.[]":           errMissingKey,
		"data.x[":           errBrackets,
		"data.x[0]":         errBrackets,
		"data.x[]y":         errBrackets,
		"data.x]":           errKeyChar,
		"data.x y":          errKeyChar,
		"data.é":            errKeyChar,
		"data.x*":           errKeyChar,
		"data.x\x00":        errKeyChar,
		"data[]":            errRoot,
		"data[].x":          errRoot,
		"foo.bar":           errRoot,
		"Data.x":            errRoot,
		"quotient_familial": errRoot,
	}
	for p, want := range bad {
		if err := ValidPath(p); !errors.Is(err, want) {
			t.Errorf("ValidPath(%q) = %v, want %v", p, err, want)
		}
	}
	long := "data." + strings.Repeat("k", 129)
	if err := ValidPath(long); !errors.Is(err, errKeyLen) {
		t.Errorf("129-byte key: %v", err)
	}
	segs := "data"
	for range 31 {
		segs += ".a"
	}
	if err := ValidPath(segs); err != nil {
		t.Errorf("32 segments: %v", err)
	}
	if err := ValidPath(segs + ".a"); !errors.Is(err, errTooManySegs) {
		t.Errorf("33 segments: %v", err)
	}
}

func TestCompile(t *testing.T) {
	p, err := Compile([]string{
		"data.x.y", "data.x", "data.x.z", // subsumed by data.x
		"data.a[].b", "data.a[].c", "data.a[].b",
		"meta.m",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"data.a[].b", "data.a[].c", "data.x", "meta.m"}
	if got := p.List(); !slices.Equal(got, want) {
		t.Errorf("List() = %q, want %q", got, want)
	}
	if got := mustCompile(t).List(); len(got) != 0 {
		t.Errorf("empty Compile lists %q", got)
	}
	if got := (*Paths)(nil).List(); got != nil {
		t.Errorf("nil List() = %q", got)
	}
	// Every bad path is reported, with its index.
	_, err = Compile([]string{"data.ok", "bad", "data..x"})
	if err == nil || !errors.Is(err, errRoot) || !errors.Is(err, errEmptySegment) {
		t.Errorf("Compile errors = %v", err)
	}
}
