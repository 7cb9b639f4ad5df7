package caddyplugin

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/secretref"
)

// resolveSecret resolves a secret field at Provision (SECURITY.md H01). Only
// {env.NAME} and {file.path} references are accepted in production: a literal
// would sit in the JSON config that the admin API serves. Sandbox mode accepts
// a literal, and a secret file others can read, with a warning. Errors name
// the field, never the value.
func (a *App) resolveSecret(field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !secretref.IsReference(v) {
		if a.production() {
			return "", fmt.Errorf("%s: a literal secret is refused in production mode; use {env.NAME} or {file.path}", field)
		}
		a.logger.Warn("literal secret accepted in sandbox mode", zap.String("field", field))
		return v, nil
	}
	out, loose, err := secretref.Resolve(v)
	switch {
	case loose && a.production():
		return "", fmt.Errorf("%s: secret file is readable by others or by a group other than the gateway's own (chmod 600)", field)
	case err != nil:
		return "", fmt.Errorf("%s: %w", field, err)
	case loose:
		a.logger.Warn("secret file readable by others or by a group other than the gateway's own", zap.String("field", field))
	}
	return out, nil
}
