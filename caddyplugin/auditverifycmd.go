package caddyplugin

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/passerelle-gw/passerelle/caddyplugin/auditseal"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "audit-verify",
		Usage: "--key <key_id>=<key file> [--key …] [--since <time>] [--format text|json] <file>…",
		Short: "Verifies the seals of an audit trail",
		Long: `Verifies a trail sealed by the passerelle_sealed log encoder (SECURITY.md
G09): every record's seal under the key of its key id, and, for each
process that wrote it (a stream: its seal_boot), that no sequence number
is missing between the first and the last record held, nor seen twice.
A stream (a process's records under one key id) that began after the
trail's start (seal_boot holds when it began, seal_at each record's time,
both sealed) must start at 1, so that records removed around a restart or
a key rotation are missing whatever the order of the lines; a stream that
began before may start later (the oldest files gone with the retention),
as may one that began within 10 s of it (the instances' clocks). The
trail's start is its earliest record, or --since (RFC 3339): for several
instances' trails merged whose oldest files were not cut at the same time,
give the latest of their oldest records. Files may be given in any order;
rolled files compressed by Caddy (.gz) are read as they are. A key file
holds the key as the gateway reads {file.path} (one trailing line end
removed). A key id may be given with several keys, when its key was
changed across a restart without a new key id: each stream is verified
under the one its records verify with, and every record of a stream under
that key.

What a seal cannot show: records removed after the last one a stream
holds, a stream removed whole, or one copied in from another instance's
trail. Compare each stream (boot, last sequence number) with the gateway's
caddy_passerelle_audit_sealed_total{key_id, boot}, scraped off-host.

Exit status: 0 when the trail holds, 1 when a record is unsealed,
altered, under an unknown key, duplicated or missing, or when the files
hold no record at all (emptied, or every line blanked), 2 when a file or
a key cannot be read.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringArray("key", nil, "A key: <key_id>=<key file> (repeat for a trail across key rotations)")
			cmd.Flags().String("format", "text", "Output: text or json")
			cmd.Flags().String("since", "", "When the trail verified begins (RFC 3339); default: its earliest record")
			cmd.RunE = func(cmd *cobra.Command, files []string) error {
				if code := runAuditVerify(cmd, files); code != 0 {
					os.Exit(code)
				}
				return nil
			}
		},
	})
}

// runAuditVerify runs the command and returns its exit status.
func runAuditVerify(cmd *cobra.Command, files []string) int {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	specs, _ := cmd.Flags().GetStringArray("key")
	format, _ := cmd.Flags().GetString("format")
	sinceFlag, _ := cmd.Flags().GetString("since")
	var since time.Time
	if sinceFlag != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, sinceFlag); err != nil {
			fmt.Fprintln(errOut, "passerelle audit-verify: --since: want an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
			return 2
		}
	}
	if format != "text" && format != "json" {
		fmt.Fprintln(errOut, "passerelle audit-verify: --format text or json")
		return 2
	}
	keys, err := readSealKeys(specs)
	if err == nil && len(files) == 0 {
		err = errors.New("no file to verify")
	}
	if err != nil {
		fmt.Fprintln(errOut, "passerelle audit-verify:", err)
		return 2
	}
	v := auditseal.NewVerifier(auditseal.Options{Keys: keys, Since: since})
	for _, name := range files {
		if err := verifyFile(v, name); err != nil {
			fmt.Fprintln(errOut, "passerelle audit-verify:", err)
			return 2
		}
	}
	report := v.Report()
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			auditseal.Report
			OK bool `json:"ok"`
		}{report, report.OK()})
	} else {
		counts := map[string]int{}
		for id, k := range keys {
			counts[id] = len(k)
		}
		writeVerifyReport(out, report, counts)
	}
	if !report.OK() {
		return 1
	}
	return 0
}

// readSealKeys reads the keys of --key <key_id>=<file>. Its errors quote
// neither a --key's value nor a path: a key typed in their place must not
// reach the terminal's scrollback.
// A key id may come with several keys (a key changed across a restart
// under the same id): each stream is verified under the one its records
// verify with.
func readSealKeys(specs []string) (map[string][][]byte, error) {
	if len(specs) == 0 {
		return nil, errors.New("--key <key_id>=<key file> is required")
	}
	keys := map[string][][]byte{}
	for i, spec := range specs {
		id, path, ok := strings.Cut(spec, "=")
		if !ok || !auditseal.ValidKeyID(id) || path == "" {
			return nil, fmt.Errorf("--key number %d: want <key_id>=<key file>, a key id of letters, digits, '.', '_' or '-'", i+1)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			reason := "unreadable"
			if errors.Is(err, fs.ErrNotExist) {
				reason = "no such file"
			}
			return nil, fmt.Errorf("--key number %d: its file: %s", i+1, reason)
		}
		// As Caddy's {file.path} placeholder reads it.
		key := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
		if len(key) < auditseal.MinKeyBytes {
			return nil, fmt.Errorf("--key number %d: a key shorter than %d bytes", i+1, auditseal.MinKeyBytes)
		}
		if !slices.ContainsFunc(keys[id], func(k []byte) bool { return bytes.Equal(k, key) }) {
			keys[id] = append(keys[id], key)
		}
	}
	return keys, nil
}

// verifyFile verifies one file, gunzipped when its name ends in .gz.
func verifyFile(v *auditseal.Verifier, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	return v.Read(name, r)
}

// writeVerifyReport writes a report as text.
// keys gives how many keys each key id has.
func writeVerifyReport(w io.Writer, r auditseal.Report, keys map[string]int) {
	fmt.Fprintf(w, "%d records, %d verified\n", r.Lines, r.Verified)
	for _, s := range r.Streams {
		fmt.Fprintf(w, "key %s", s.KeyID)
		if keys[s.KeyID] > 1 {
			fmt.Fprintf(w, " (its key number %d)", s.Key)
		}
		fmt.Fprintf(w, ", boot %s: %d records, sequence %d to %d", s.Boot, s.Records, s.First, s.Last)
		if s.First > 1 && (len(s.Missing) == 0 || s.Missing[0].From != 1) {
			fmt.Fprintf(w, " (1 to %d before the trail)", s.First-1)
		}
		fmt.Fprintf(w, ", begun %s", s.Started.Format(time.RFC3339))
		fmt.Fprintln(w)
		for _, m := range s.Missing {
			fmt.Fprintf(w, "  MISSING %d to %d\n", m.From, m.To)
		}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%s:%d: %s\n", p.File, p.Line, strings.ToUpper(p.Kind))
	}
	if n := sum(r.Counts) - len(r.Problems); n > 0 {
		fmt.Fprintf(w, "… and %d more\n", n)
	}
	if r.Verified == 0 {
		fmt.Fprintln(w, "no sealed record: nothing verified")
	}
	if r.OK() {
		fmt.Fprintln(w, "OK")
	} else {
		fmt.Fprintln(w, "FAILED")
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
