package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report writes findings in a format: text (one block a finding), json (an
// object with the findings, the ignored ones and a count by severity) or
// markdown (a table, for the homologation dossier).
func Report(w io.Writer, format string, kept, ignored []Finding) error {
	switch format {
	case "", "text":
		if len(kept) == 0 {
			_, err := fmt.Fprintf(w, "no finding (%d ignored)\n", len(ignored))
			return err
		}
		for _, f := range kept {
			detail := ""
			if f.Detail != "" {
				detail = "\n  found: " + f.Detail
			}
			if _, err := fmt.Fprintf(w, "%s %-8s %s\n  at: %s%s\n  fix: %s\n", f.Rule, strings.ToUpper(f.Severity.String()), f.Title, f.Path, detail, f.Fix); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(w, "%d finding(s): %s (%d ignored)\n", len(kept), counts(kept), len(ignored))
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if kept == nil {
			kept = []Finding{}
		}
		if ignored == nil {
			ignored = []Finding{}
		}
		return enc.Encode(struct {
			Findings []Finding      `json:"findings"`
			Ignored  []Finding      `json:"ignored"`
			Counts   map[string]int `json:"counts"`
		}{kept, ignored, countMap(kept)})
	case "markdown":
		if _, err := fmt.Fprintf(w, "| Rule | Severity | Finding | Where | Fix |\n|---|---|---|---|---|\n"); err != nil {
			return err
		}
		for _, f := range kept {
			what := f.Title
			if f.Detail != "" {
				what += ": " + f.Detail
			}
			if _, err := fmt.Fprintf(w, "| %s | %s | %s | `%s` | %s |\n", f.Rule, f.Severity, md(what), f.Path, md(f.Fix)); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(w, "\n%d finding(s): %s; %d ignored with a justification.\n", len(kept), counts(kept), len(ignored))
		return err
	}
	return fmt.Errorf("audit: format %q: text, json or markdown", format)
}

func md(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func countMap(fs []Finding) map[string]int {
	m := map[string]int{}
	for _, f := range fs {
		m[f.Severity.String()]++
	}
	return m
}

func counts(fs []Finding) string {
	m := countMap(fs)
	var parts []string
	for _, s := range []Severity{Critical, High, Medium, Low} {
		if m[s.String()] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[s.String()], s))
		}
	}
	return strings.Join(parts, ", ")
}
