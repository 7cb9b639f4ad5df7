// Command vulndb builds a Go vulnerability database, in the v1 layout
// govulncheck reads with -db file:///…, from the OSV reports of the
// golang.org/x/vulndb module as the Go module proxy serves it (data/osv):
// no network access to vuln.go.dev is needed, and the module version pins
// the database's content.
//
//	go run ./deploy/supplychain/vulndb -src <vulndb module dir> -out <dir> -modified 2026-11-05T23:49:57Z
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// entry is the part of an OSV report the indexes need.
type entry struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases"`
	Affected []struct {
		Module struct {
			Path string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Events []struct {
				Fixed string `json:"fixed"`
			} `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string `json:"id"`
	Modified string `json:"modified"`
	Fixed    string `json:"fixed,omitempty"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vuln struct {
	ID       string   `json:"id"`
	Modified string   `json:"modified"`
	Aliases  []string `json:"aliases,omitempty"`
}

func main() {
	src := flag.String("src", "", "the golang.org/x/vulndb module directory")
	out := flag.String("out", "", "the database directory to write")
	modified := flag.String("modified", "", "the database's modification time (RFC 3339): the module version's date")
	flag.Parse()
	if *src == "" || *out == "" || *modified == "" {
		log.Fatal("vulndb: -src, -out and -modified are required")
	}
	files, err := filepath.Glob(filepath.Join(*src, "data", "osv", "GO-*.json"))
	if err != nil || len(files) == 0 {
		log.Fatalf("vulndb: no OSV report under %s/data/osv", *src)
	}
	for _, d := range []string{"index", "ID"} {
		if err := os.MkdirAll(filepath.Join(*out, d), 0o755); err != nil {
			log.Fatal(err)
		}
	}
	modules := map[string]*module{}
	var vulns []vuln
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		var doc map[string]any
		var e entry
		if json.Unmarshal(raw, &doc) != nil || json.Unmarshal(raw, &e) != nil || e.ID == "" {
			log.Fatalf("vulndb: %s is not an OSV report", f)
		}
		// The reports of the module carry a zero time; the database says
		// when its content was taken.
		doc["modified"] = *modified
		if p, _ := doc["published"].(string); p == "" || strings.HasPrefix(p, "0001-") {
			doc["published"] = *modified
		}
		b, _ := json.Marshal(doc)
		if err := os.WriteFile(filepath.Join(*out, "ID", e.ID+".json"), b, 0o644); err != nil {
			log.Fatal(err)
		}
		vulns = append(vulns, vuln{ID: e.ID, Modified: *modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			m := modules[a.Module.Path]
			if m == nil {
				m = &module{Path: a.Module.Path}
				modules[a.Module.Path] = m
			}
			fixed := ""
			for _, r := range a.Ranges {
				for _, ev := range r.Events {
					if ev.Fixed != "" {
						fixed = ev.Fixed
					}
				}
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: *modified, Fixed: fixed})
		}
	}
	var mods []*module
	for _, m := range modules {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
	write := func(name string, v any) {
		b, err := json.Marshal(v)
		if err == nil {
			err = os.WriteFile(filepath.Join(*out, "index", name), b, 0o644)
		}
		if err != nil {
			log.Fatal(err)
		}
	}
	write("db.json", map[string]string{"modified": *modified})
	write("modules.json", mods)
	write("vulns.json", vulns)
	fmt.Printf("vulndb: %d reports, %d modules\n", len(vulns), len(mods))
}
