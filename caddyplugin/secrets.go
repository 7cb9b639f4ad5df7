package caddyplugin

import (
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/config/audit"
)

// isReference reports whether v is exactly one runtime reference, {env.NAME}
// or {file.path}, and nothing else (the rule passerelle audit applies too).
func isReference(v string) bool { return audit.IsReference(v) }

// resolveSecret resolves a secret field at Provision (SECURITY.md H01). Only
// {env.NAME} and {file.path} references are accepted in production: a literal
// would sit in the JSON config that the admin API serves. Sandbox mode accepts
// a literal with a warning. Errors name the field, never the value.
func (a *App) resolveSecret(field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !isReference(v) {
		if a.production() {
			return "", fmt.Errorf("%s: a literal secret is refused in production mode; use {env.NAME} or {file.path}", field)
		}
		a.logger.Warn("literal secret accepted in sandbox mode", zap.String("field", field))
		return v, nil
	}
	if path, ok := strings.CutPrefix(strings.TrimSuffix(v, "}"), "{file."); ok {
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("%s: secret file unreadable: %w", field, err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			if a.production() {
				return "", fmt.Errorf("%s: secret file is readable by group or others (chmod 600)", field)
			}
			a.logger.Warn("secret file readable by group or others", zap.String("field", field))
		}
	}
	out := caddy.NewReplacer().ReplaceKnown(v, "")
	if out == "" || out == v {
		return "", fmt.Errorf("%s: the reference resolves to an empty value", field)
	}
	return out, nil
}
