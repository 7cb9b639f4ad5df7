package habilitation

import (
	"strings"
	"testing"
)

func TestHasAPITokenShape(t *testing.T) {
	for token, want := range map[string]bool{
		"pa_" + strings.Repeat("A", 43):         true,
		"pa_" + strings.Repeat("a-_9", 11)[:43]: true,
		"pa_" + strings.Repeat("A", 42):         false,
		"pa_" + strings.Repeat("A", 44):         false,
		"pa_" + strings.Repeat("A", 42) + "=":   false,
		strings.Repeat("A", 43):                 false, // FranceConnect's access tokens
		"pa_" + strings.Repeat("A", 41) + "é":   false, // 46 bytes
		"PA_" + strings.Repeat("A", 43):         false,
	} {
		if got := HasAPITokenShape(token); got != want {
			t.Errorf("HasAPITokenShape(%q) = %t", token, got)
		}
	}
}
