package habilitation

import (
	"strings"
	"testing"
)

func TestHasAPITokenShape(t *testing.T) {
	for token, want := range map[string]bool{
		"pa_" + strings.Repeat("A", 43):         true, // minted
		"pa_" + strings.Repeat("a-_9", 11)[:43]: true,
		"pa_" + strings.Repeat("A", 42):         true, // truncated
		"pa_" + strings.Repeat("A", 44):         true,
		"pa_" + strings.Repeat("A", 43) + "=":   true, // padded
		"pa_":                                   true,
		"pa_" + strings.Repeat("A", 40):         false, // 43 characters: may be FranceConnect's
		strings.Repeat("A", 43):                 false, // FranceConnect's access tokens
		"PA_" + strings.Repeat("A", 43):         false,
		"cnaf_qfv2":                             false,
	} {
		if got := HasAPITokenShape(token); got != want {
			t.Errorf("HasAPITokenShape(%q) = %t", token, got)
		}
	}
}
