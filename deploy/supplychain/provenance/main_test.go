package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	// A module of the test binary, whose provenance must list it.
	"golang.org/x/net/idna"
)

var _ = idna.Lookup

// TestBuildReadsTheBinary: the provenance of a Go binary (this test's own)
// names its SHA-256, the revision and command given, its toolchain and
// settings, and every module it holds with go.sum's hash; a file without
// Go build information is refused.
func TestBuildReadsTheBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	st, err := build(self, "0123abcd", "go build -trimpath ./cmd/passerelle", "https://ci.example/job/1", now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != statementType || st.PredicateType != predicateType || len(st.Subject) != 1 ||
		st.Subject[0].Digest["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("statement: %+v", st.Subject)
	}
	bd := st.Predicate.BuildDefinition
	src, _ := bd.ExternalParameters["source"].(Resource)
	if src.Digest["gitCommit"] != "0123abcd" || bd.ExternalParameters["command"] != "go build -trimpath ./cmd/passerelle" {
		t.Errorf("external parameters: %+v", bd.ExternalParameters)
	}
	if bd.InternalParameters["goVersion"] != runtime.Version() {
		t.Errorf("goVersion %v, want %s", bd.InternalParameters["goVersion"], runtime.Version())
	}
	if !slices.ContainsFunc(bd.ResolvedDependencies, func(r Resource) bool {
		return strings.HasPrefix(r.URI, "pkg:golang/golang.org/x/net@v") && strings.HasPrefix(r.Annotations["go.sum"], "h1:")
	}) {
		t.Errorf("golang.org/x/net with its go.sum hash not among %+v", bd.ResolvedDependencies)
	}
	if st.Predicate.RunDetails.Builder.ID != "https://ci.example/job/1" || st.Predicate.RunDetails.Metadata.FinishedOn != "2026-12-07T12:00:00Z" {
		t.Errorf("run details: %+v", st.Predicate.RunDetails)
	}

	notGo := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notGo, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := build(notGo, "r", "c", "b", now); err == nil {
		t.Error("a file without Go build information got a provenance")
	}
}
