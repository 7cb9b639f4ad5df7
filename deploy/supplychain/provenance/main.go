// Command provenance writes the build provenance of a release's binary: an
// in-toto Statement v1 whose predicate is SLSA Provenance v1, read from the
// binary itself (its SHA-256, the Go toolchain, the build settings and every
// module it holds, with go.sum's hash), the source revision and the build
// command. release.sh writes it beside the binary; SHA256SUMS lists it, and
// SHA256SUMS.sig signs them all.
//
//	go run ./deploy/supplychain/provenance -binary out/passerelle -revision <commit> \
//	    -command "<go build …>" -builder <who built it> > out/passerelle.provenance.json
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Types of the statement and its predicate.
const (
	statementType = "https://in-toto.io/Statement/v1"
	predicateType = "https://slsa.dev/provenance/v1"
	buildType     = "https://github.com/passerelle-gw/passerelle/deploy/supplychain/release.sh@v1"
	sourceURI     = "git+https://github.com/passerelle-gw/passerelle"
)

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Resource `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     Provenance `json:"predicate"`
}

// Resource is an in-toto ResourceDescriptor.
type Resource struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Provenance is a SLSA Provenance v1 predicate.
type Provenance struct {
	BuildDefinition struct {
		BuildType            string         `json:"buildType"`
		ExternalParameters   map[string]any `json:"externalParameters"`
		InternalParameters   map[string]any `json:"internalParameters"`
		ResolvedDependencies []Resource     `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata struct {
			FinishedOn string `json:"finishedOn"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

func main() {
	binary := flag.String("binary", "", "the release's binary (required)")
	revision := flag.String("revision", "", "the source commit the binary is built from (required)")
	command := flag.String("command", "", "the build command (required)")
	builder := flag.String("builder", "", "who or what built it, e.g. a CI job's URL (required)")
	flag.Parse()
	if *binary == "" || *revision == "" || *command == "" || *builder == "" {
		flag.Usage()
		os.Exit(2)
	}
	st, err := build(*binary, *revision, *command, *builder, time.Now())
	if err == nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(st)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "provenance:", err)
		os.Exit(1)
	}
}

// build reads the binary at path and returns its provenance.
func build(path, revision, command, builder string, now time.Time) (*Statement, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: no Go build information: %w", path, err)
	}
	if info.Main.Path == "" {
		return nil, errors.New(path + ": no main module in its build information")
	}
	st := &Statement{Type: statementType, PredicateType: predicateType,
		Subject: []Resource{{Name: filepath.Base(path), Digest: map[string]string{"sha256": hex.EncodeToString(h.Sum(nil))}}}}
	bd := &st.Predicate.BuildDefinition
	bd.BuildType = buildType
	bd.ExternalParameters = map[string]any{
		"source":  Resource{URI: sourceURI, Digest: map[string]string{"gitCommit": revision}},
		"package": info.Path,
		"command": command,
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	bd.InternalParameters = map[string]any{"goVersion": info.GoVersion, "settings": settings}
	bd.ResolvedDependencies = []Resource{{URI: "pkg:golang/toolchain@" + info.GoVersion}}
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		r := Resource{URI: "pkg:golang/" + d.Path + "@" + d.Version}
		if d.Sum != "" {
			r.Annotations = map[string]string{"go.sum": d.Sum}
		}
		bd.ResolvedDependencies = append(bd.ResolvedDependencies, r)
	}
	st.Predicate.RunDetails.Builder.ID = builder
	st.Predicate.RunDetails.Metadata.FinishedOn = now.UTC().Format(time.RFC3339)
	return st, nil
}
