package dossier

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

// The traceability of SECURITY.md's requirements to the tests that prove
// them (SECURITY.md J07): a test proves a requirement when its name starts
// with the requirement's id (TestA08_…, FuzzC06_C10_…) or when a
// "// req: A08, B02" comment precedes it. deploy/homologation's
// TestTraceability and `passerelle dossier` (05-exigences-tests.md) share
// this code.

// Paths of the traceability's sources in a repository checkout.
const (
	SecurityPath = "deploy/homologation/SECURITY.md"
	UntestedPath = "deploy/homologation/untested.txt"
)

var (
	// requirementRow is a row of SECURITY.md's tables: "| A01 | text |".
	requirementRow = regexp.MustCompile(`^\| *([A-J][0-9]{2}) *\| *(.+?) *\|`)
	// testFunc is a test, fuzz target or benchmark; its name's ids are the
	// id-shaped words between underscores at its start (TestC06_C10_…).
	testFunc = regexp.MustCompile(`^func ((?:Test|Fuzz|Benchmark)([A-J][0-9]{2}(?:_[A-J][0-9]{2})*)_\w*)\(`)
	// reqComment is a "// req: A08, B02" comment; it applies to the next
	// test function.
	reqComment = regexp.MustCompile(`^\s*// req: *([A-J][0-9]{2}(?:[ ,]+[A-J][0-9]{2})*)`)
	anyFunc    = regexp.MustCompile(`^func ((?:Test|Fuzz|Benchmark)\w*)\(`)
)

// Requirement is one row of SECURITY.md: its id and the first clause of its
// text (at most 140 bytes).
type Requirement struct{ ID, Text string }

// ParseRequirements reads SECURITY.md's requirement rows, in file order,
// each id once.
func ParseRequirements(securityMD []byte) []Requirement {
	var out []Requirement
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(securityMD))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := requirementRow.FindStringSubmatch(sc.Text())
		if m == nil || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		text := strings.ReplaceAll(m[2], "**", "")
		// The row's first sentence or clause, at most 140 bytes.
		cut := len(text)
		for _, sep := range []string{". ", ": ", "; "} {
			if i := strings.Index(text, sep); i > 0 && i < cut {
				cut = i
			}
		}
		if cut > 140 {
			text = strings.ToValidUTF8(text[:140], "") + "…"
		} else {
			text = strings.TrimSuffix(text[:cut], ".")
		}
		out = append(out, Requirement{m[1], text})
	}
	return out
}

// TestIndex is what the test files of a checkout declare.
type TestIndex struct {
	// ByRequirement maps a requirement id to the tests that name or tag
	// it, as "package-dir/TestName", in the order found.
	ByRequirement map[string][]string
	// Packages maps every test, fuzz target and benchmark name to the
	// directories that declare it.
	Packages map[string][]string
}

// ScanTests reads every _test.go file of src (a repository checkout; .git
// and testdata directories skipped).
func ScanTests(src fs.FS) (*TestIndex, error) {
	idx := &TestIndex{ByRequirement: map[string][]string{}, Packages: map[string][]string{}}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return fs.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		dir := path.Dir(p)
		var tagged []string
		for _, line := range strings.Split(string(data), "\n") {
			if m := reqComment.FindStringSubmatch(line); m != nil {
				tagged = append(tagged, strings.FieldsFunc(m[1], func(r rune) bool { return r == ' ' || r == ',' })...)
				continue
			}
			m := anyFunc.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if !slices.Contains(idx.Packages[m[1]], dir) {
				idx.Packages[m[1]] = append(idx.Packages[m[1]], dir)
			}
			ids := tagged
			tagged = nil
			if n := testFunc.FindStringSubmatch(line); n != nil {
				ids = append(ids, strings.Split(n[2], "_")...)
			}
			for _, id := range ids {
				name := dir + "/" + m[1]
				if !slices.Contains(idx.ByRequirement[id], name) {
					idx.ByRequirement[id] = append(idx.ByRequirement[id], name)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return idx, nil
}

// Waiver is an untested.txt line: a requirement without a test yet, whose
// Status is "operator" (the operator's: deployment, organisation) or
// "pending" (a test to write or a feature to build), with why.
type Waiver struct{ Status, Why string }

// String is the waiver as the traceability table shows it.
func (w Waiver) String() string { return w.Status + ": " + w.Why }

// ParseUntested reads untested.txt: "ID status -- justification" lines,
// # comments.
func ParseUntested(data []byte) (map[string]Waiver, error) {
	out := map[string]Waiver{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		head, why, ok := strings.Cut(line, "--")
		f := strings.Fields(head)
		if !ok || strings.TrimSpace(why) == "" || len(f) != 2 || f[1] != "operator" && f[1] != "pending" {
			return nil, fmt.Errorf("untested.txt line %d: expected \"ID operator|pending -- justification\"", i+1)
		}
		out[f[0]] = Waiver{f[1], strings.TrimSpace(why)}
	}
	return out, nil
}

// TraceRow is one requirement with its tests (sorted) or its waiver.
type TraceRow struct {
	Requirement
	Tests  []string
	Waiver *Waiver
}

// Traceability is the requirements' traceability to tests.
type Traceability struct {
	Rows []TraceRow
	// Covered counts the requirements proved by at least one test.
	Covered int
	// Problems lists a requirement neither tested nor waived, and a waived
	// one that has a test: either fails TestTraceability.
	Problems []string
}

// Trace matches requirements with tests and waivers.
func Trace(reqs []Requirement, tests *TestIndex, waived map[string]Waiver) Traceability {
	var t Traceability
	for _, r := range reqs {
		row := TraceRow{Requirement: r, Tests: slices.Sorted(slices.Values(tests.ByRequirement[r.ID]))}
		w, listed := waived[r.ID]
		switch {
		case len(row.Tests) > 0:
			t.Covered++
			if listed {
				t.Problems = append(t.Problems, fmt.Sprintf("%s has tests (%s): remove it from untested.txt", r.ID, row.Tests[0]))
			}
		case listed:
			row.Waiver = &w
		default:
			t.Problems = append(t.Problems, fmt.Sprintf("%s has no test: write one, or list it in untested.txt with its status and why", r.ID))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// cell is the row's "Tests" cell: the tests, or "— " and the waiver.
func (r TraceRow) cell() string {
	if r.Waiver != nil {
		return "— " + r.Waiver.String()
	}
	return strings.Join(r.Tests, "<br>")
}

// Markdown is deploy/homologation/traceability.md.
func (t Traceability) Markdown() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Traçabilité des exigences de sécurité\n\nGénéré par `go test ./deploy/homologation -update` "+
		"depuis SECURITY.md et les tests du dépôt (nom `TestA08_…` ou commentaire `// req: A08`). "+
		"Le dernier résultat de chaque test est celui de la CI (`bash .ci/run`) sur la révision du dossier.\n\n"+
		"| Exigence | Objet | Tests |\n|---|---|---|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.ID, strings.ReplaceAll(r.Text, "|", `\|`), r.cell())
	}
	fmt.Fprintf(&b, "\n%d exigences sur %d prouvées par au moins un test.\n", t.Covered, len(t.Rows))
	return b.Bytes()
}

// TraceSource reads the traceability of a repository checkout.
func TraceSource(src fs.FS) (Traceability, error) {
	sec, err := fs.ReadFile(src, SecurityPath)
	if err != nil {
		return Traceability{}, err
	}
	un, err := fs.ReadFile(src, UntestedPath)
	if err != nil {
		return Traceability{}, err
	}
	waived, err := ParseUntested(un)
	if err != nil {
		return Traceability{}, err
	}
	idx, err := ScanTests(src)
	if err != nil {
		return Traceability{}, err
	}
	return Trace(ParseRequirements(sec), idx, waived), nil
}
