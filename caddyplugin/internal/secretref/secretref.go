// Package secretref resolves the references through which configurations
// name their secrets (SECURITY.md H01): {env.NAME} or {file.path}, exactly
// one and nothing around it (audit.IsReference, the rule `passerelle
// audit` applies too), never a literal, which would sit in the JSON
// configuration the admin API serves.
package secretref

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/passerelle-gw/passerelle/config/audit"
)

// IsReference reports whether v is exactly one reference.
func IsReference(v string) bool { return audit.IsReference(v) }

// ErrEmpty reports a reference that resolves to an empty value (an unset
// variable, an empty file).
var ErrEmpty = errors.New("the reference resolves to an empty value")

// Resolve returns the value a reference names. loose reports a secret
// file that is not private to the gateway (audit.PrivateFile: readable by
// others, or by a group other than the process's own; its caller refuses
// it, or warns).
// Errors never hold the value.
func Resolve(ref string) (value string, loose bool, err error) {
	if !IsReference(ref) {
		return "", false, errors.New("not a {env.NAME} or {file.path} reference")
	}
	if path, ok := strings.CutPrefix(strings.TrimSuffix(ref, "}"), "{file."); ok {
		info, err := os.Stat(path)
		if err != nil {
			return "", false, fmt.Errorf("secret file unreadable: %w", err)
		}
		loose = !audit.PrivateFile(info)
	}
	value = caddy.NewReplacer().ReplaceKnown(ref, "")
	if value == "" || value == ref {
		return "", loose, ErrEmpty
	}
	return value, loose, nil
}
