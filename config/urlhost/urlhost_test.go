package urlhost

import "testing"

// TestOf: spellings a resolver reads as one host give that host; an
// unreadable URL or host is not ok.
func TestOf(t *testing.T) {
	for raw, want := range map[string]string{
		"https://Staging.DataPass.api.gouv.fr./api": "staging.datapass.api.gouv.fr",
		"https://staging．datapass。api．gouv．fr":      "staging.datapass.api.gouv.fr",
		" https://user@fcp.sbx.example.fr:443/x ":   "fcp.sbx.example.fr",
		"http://127.0.0.1:9081":                     "127.0.0.1",
	} {
		if got, ok := Of(raw); !ok || got != want {
			t.Errorf("Of(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for _, raw := range []string{"https://exa mple.fr/", "http://[::1", "https://a\x00b.fr/"} {
		if got, ok := Of(raw); ok {
			t.Errorf("Of(%q) = %q, ok", raw, got)
		}
	}
}
