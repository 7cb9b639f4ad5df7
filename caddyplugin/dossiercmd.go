package caddyplugin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/passerelle-gw/passerelle/config/dossier"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name: "dossier",
		Usage: "--config <path> [--adapter <name>] [--out <dir>] [--source <repo>] [--ignore <path>] " +
			"[--sbom <cdx.json>] [--govulncheck <report.json>] [--load-report <load-report.json>] [--no-binary] [--date YYYY-MM-DD]",
		Short: "Writes the generated parts of the homologation dossier",
		Long: `Writes the generated parts of the homologation dossier (in French) for a
deployed configuration (a Caddyfile, adapted, or Caddy's JSON):

    flux.md                         routes, providers, scopes, data categories, retention
    04-mesures-mss.csv              MonServiceSécurisé measures, status and evidence
    05-exigences-tests.md           security requirements → tests (needs --source)
    06-audit-configuration.md       passerelle audit of the configuration (--ignore: accepted findings)
    07-chaine-approvisionnement.md  this binary's SHA-256 and build info, the SBOM, govulncheck and load reports
    09-aipd.pia.json, 09-aipd.md    an AIPD starting point for the CNIL PIA tool

--source is a checkout of the repository at the deployed revision (for the
traceability); without it 05 says so. --sbom, --govulncheck and
--load-report take the files of deploy/supplychain/sbom.sh
(passerelle.cdx.json), deploy/supplychain/govulncheck.sh <report.json> and
deploy/bench/report.sh (load-report.json). --no-binary leaves this
binary out of 07, as the dossier committed in the repository does. The
files in --out are overwritten, but one that is a symbolic link (or not a
regular file) is refused, not written through. Files
the configuration names (habilitations, catalogue) are read relative to
the working directory, as the gateway reads them. The output holds no
timestamp unless --date is given, no secret value and no personal data.

Exit status: 0 when the files are written, 2 when an input cannot be read.`,
		CobraFunc: func(cmd *cobra.Command) {
			dossierFlags(cmd)
			cmd.RunE = func(cmd *cobra.Command, _ []string) error {
				if code := runDossier(cmd); code != 0 {
					os.Exit(code)
				}
				return nil
			}
		},
	})
}

// dossierFlags declares the command's flags.
func dossierFlags(cmd *cobra.Command) {
	cmd.Flags().StringP("config", "c", "", "Configuration file (a Caddyfile or JSON)")
	cmd.Flags().StringP("adapter", "a", "", "Name of config adapter (default: caddyfile for a Caddyfile, else json)")
	cmd.Flags().String("out", dossier.GeneratedDir, "Directory to write the files into")
	cmd.Flags().String("source", "", "Repository checkout, for the requirements' traceability (05)")
	cmd.Flags().String("ignore", "", "File of accepted audit findings, each with its justification")
	cmd.Flags().String("sbom", "", "CycloneDX JSON SBOM of the binary (deploy/supplychain/sbom.sh)")
	cmd.Flags().String("govulncheck", "", "govulncheck JSON report (deploy/supplychain/govulncheck.sh <file>)")
	cmd.Flags().String("load-report", "", "load report of the binary (deploy/bench/report.sh: load-report.json)")
	cmd.Flags().Bool("no-binary", false, "Leave this binary's SHA-256 and build info out (the committed dossier)")
	cmd.Flags().String("date", "", "Date of the dossier, YYYY-MM-DD (default: undated)")
}

// runDossier runs the command and returns its exit status.
func runDossier(cmd *cobra.Command) int {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	in, dir, err := dossierInput(cmd)
	if err != nil {
		fmt.Fprintln(errOut, "passerelle dossier:", err)
		return 2
	}
	files, err := dossier.Generate(in)
	if err == nil {
		err = dossier.Write(dir, files)
	}
	if err != nil {
		fmt.Fprintln(errOut, "passerelle dossier:", err)
		return 2
	}
	for _, f := range files {
		fmt.Fprintf(out, "wrote %s\n", filepath.Join(dir, f.Name))
	}
	if in.Source != nil {
		missing, err := dossier.CheckEvidence(in.Source)
		if err != nil {
			fmt.Fprintln(errOut, "passerelle dossier: checking the measures' evidence:", err)
		}
		for _, m := range missing {
			fmt.Fprintln(errOut, "passerelle dossier: warning: evidence missing in the source:", m)
		}
	}
	return 0
}

// dossierInput reads the command's flags and files into the generator's
// input, and returns the output directory.
func dossierInput(cmd *cobra.Command) (dossier.Input, string, error) {
	flags := cmd.Flags()
	get := func(name string) string { v, _ := flags.GetString(name); return v }
	var in dossier.Input
	path, source := get("config"), get("source")
	if path == "" {
		return in, "", errors.New("--config is required")
	}
	body, err := adaptConfig(path, get("adapter"))
	if err != nil {
		return in, "", err
	}
	in.Config, in.ConfigName = body, displayName(path, source)
	in.Audit = auditOptions()
	in.Date = get("date")
	if in.Date != "" {
		// A calendar date, written as the dossier prints it.
		if d, err := time.Parse(time.DateOnly, in.Date); err != nil || d.Format(time.DateOnly) != in.Date {
			return in, "", fmt.Errorf("--date %q: YYYY-MM-DD", in.Date)
		}
	}
	if p := get("ignore"); p != "" {
		if in.Ignores, err = readIgnores(p); err != nil {
			return in, "", fmt.Errorf("ignore file: %w", err)
		}
		in.IgnoreName = filepath.Base(p)
	}
	if source != "" {
		st, err := os.Stat(source)
		if err != nil || !st.IsDir() {
			return in, "", fmt.Errorf("--source %s: not a directory", source)
		}
		in.Source = os.DirFS(source)
	}
	for _, r := range []struct {
		flag string
		dst  **dossier.Report
	}{{"sbom", &in.SBOM}, {"govulncheck", &in.Govulncheck}, {"load-report", &in.Load}} {
		if p := get(r.flag); p != "" {
			data, err := os.ReadFile(p)
			if err != nil {
				return in, "", fmt.Errorf("--%s: %w", r.flag, err)
			}
			*r.dst = &dossier.Report{Name: filepath.Base(p), Data: data}
		}
	}
	if noBin, _ := flags.GetBool("no-binary"); !noBin {
		if in.Binary, err = selfBinary(); err != nil {
			return in, "", err
		}
	}
	return in, get("out"), nil
}

// adaptConfig reads a configuration and adapts it to Caddy's JSON, for
// `passerelle audit` and `passerelle dossier`. Unless an adapter is named,
// the file is read as `passerelle run --config` reads it (Caddy's
// isCaddyfile): a name starting with "Caddyfile" or ending in ".caddyfile"
// is a Caddyfile, unless it ends in ".json".
func adaptConfig(path, adapter string) ([]byte, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	base := strings.ToLower(filepath.Base(path))
	if adapter == "" && filepath.Ext(base) != ".json" &&
		(strings.HasPrefix(base, "caddyfile") || strings.HasSuffix(base, ".caddyfile")) {
		adapter = "caddyfile"
	}
	if adapter == "" || adapter == "json" {
		return body, nil
	}
	a := caddyconfig.GetAdapter(adapter)
	if a == nil {
		return nil, fmt.Errorf("unknown adapter %q", adapter)
	}
	body, _, err = a.Adapt(body, map[string]any{"filename": path})
	if err != nil {
		return nil, fmt.Errorf("adapting %s: %w", path, err)
	}
	return body, nil
}

// displayName names the configuration in the dossier: its path in the
// source checkout when it lies there, else the path given when relative,
// else its base name (no absolute path of the machine in the dossier).
func displayName(path, source string) string {
	if source != "" {
		if abs, err := filepath.Abs(path); err == nil {
			if root, err := filepath.Abs(source); err == nil {
				if rel, err := filepath.Rel(root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
					return filepath.ToSlash(rel)
				}
			}
		}
	}
	if filepath.IsAbs(path) || strings.HasPrefix(filepath.Clean(path), "..") {
		return filepath.Base(path)
	}
	return filepath.ToSlash(filepath.Clean(path))
}

// selfBinary describes the running binary: the SHA-256 of its file and
// its build info (what `go version -m` prints).
func selfBinary() (*dossier.Binary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating this binary: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("reading this binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("reading this binary: %w", err)
	}
	bin := &dossier.Binary{SHA256: hex.EncodeToString(h.Sum(nil))}
	if bi, ok := debug.ReadBuildInfo(); ok {
		bin.Info = bi
	}
	return bin, nil
}
