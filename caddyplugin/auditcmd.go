package caddyplugin

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/passerelle-gw/passerelle/config/audit"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "audit",
		Usage: "--config <path> [--adapter <name>] [--format text|json|markdown] [--fail-on <severity>] [--ignore <path>]",
		Short: "Reports the unsafe settings of a configuration",
		Long: `Reads a configuration (a Caddyfile, adapted, or Caddy's JSON) and reports the
settings a homologation reviewer would refuse, each with a rule id, a
severity (critical, high, medium, low), where it is (the JSON path of the
adapted configuration) and how to fix it. No secret value is ever printed.

--ignore names a file of accepted findings, one a line:
    PA11 apps.http.servers.srv1.routes[0].handle[0] -- probes of the cluster network only
(the path is optional; the justification after "--" is required).

Exit status: 0 when no finding is at or above --fail-on (default low), 1
when one is, 2 when the configuration or the ignore file cannot be read.
The rules: passerelle audit --list.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("config", "c", "", "Configuration file (a Caddyfile or JSON)")
			cmd.Flags().StringP("adapter", "a", "", "Name of config adapter (default: caddyfile for a Caddyfile, else json)")
			cmd.Flags().String("format", "text", "Output: text, json or markdown")
			cmd.Flags().String("fail-on", "low", "Least severity that fails: low, medium, high or critical")
			cmd.Flags().String("ignore", "", "File of accepted findings, each with its justification")
			cmd.Flags().Bool("list", false, "List the rules and exit")
			cmd.RunE = func(cmd *cobra.Command, _ []string) error {
				code := runAudit(cmd)
				if code != 0 {
					os.Exit(code)
				}
				return nil
			}
		},
	})
}

// runAudit runs the command and returns its exit status.
func runAudit(cmd *cobra.Command) int {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	flags := cmd.Flags()
	if list, _ := flags.GetBool("list"); list {
		for _, r := range audit.Rules() {
			fmt.Fprintf(out, "%s %-8s %s\n     fix: %s\n", r.ID, strings.ToUpper(r.Severity.String()), r.Title, r.Fix)
		}
		return 0
	}
	path, _ := flags.GetString("config")
	adapter, _ := flags.GetString("adapter")
	format, _ := flags.GetString("format")
	failOn, _ := flags.GetString("fail-on")
	ignorePath, _ := flags.GetString("ignore")
	threshold, err := audit.ParseSeverity(failOn)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 2
	}
	findings, err := auditFile(path, adapter)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 2
	}
	ignores, err := readIgnores(ignorePath)
	if err != nil {
		fmt.Fprintln(errOut, "passerelle audit: ignore file:", err)
		return 2
	}
	kept, ignored := audit.Apply(findings, ignores)
	if err := audit.Report(out, format, kept, ignored); err != nil {
		fmt.Fprintln(errOut, err)
		return 2
	}
	if audit.AtOrAbove(kept, threshold) {
		return 1
	}
	return 0
}

// auditFile adapts and audits one configuration file. Files it names (the
// habilitations) are read relative to the working directory, as the
// gateway reads them.
func auditFile(path, adapter string) ([]audit.Finding, error) {
	if path == "" {
		return nil, errors.New("passerelle audit: --config is required")
	}
	body, err := adaptConfig(path, adapter)
	if err != nil {
		return nil, fmt.Errorf("passerelle audit: %w", err)
	}
	return audit.Run(body, auditOptions())
}

// readIgnores reads a file of accepted findings; none when path is "".
func readIgnores(path string) ([]audit.Ignore, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return audit.ParseIgnore(data)
}

// auditOptions are the audit's options as the gateway will run: files (and
// their modes) and environment of this host, and Caddy's configuration and module types
// (every module of this binary) for PA28.
func auditOptions() audit.Options {
	return audit.Options{ReadFile: os.ReadFile, Getenv: os.Getenv, Stat: os.Stat, ConfigType: reflect.TypeFor[caddy.Config](),
		ModuleType: func(id string) (reflect.Type, bool) {
			mi, err := caddy.GetModule(id)
			if err != nil {
				return nil, false
			}
			return reflect.TypeOf(mi.New()), true
		}}
}
