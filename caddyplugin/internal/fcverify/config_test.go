package fcverify

import "testing"

func TestIsTestPlatformURL(t *testing.T) {
	for u, want := range map[string]bool{
		"https://fcp-low.integ01.dev-franceconnect.fr/api/v2":    true,
		"https://FCP-LOW.INTEG01.DEV-FRANCECONNECT.FR/api/v2":    true,
		"https://auth.integ02.dev-franceconnect.fr./api/v2/jwks": true,
		"https://fcp.sbx.example.fr/api/v2":                      true,
		"https://fcp-low．integ01．dev-franceconnect．fr/api/v2":    true,
		"https://fcp-low。integ01。dev-franceconnect。fr/api/v2":    true,
		"https://oidc.franceconnect.gouv.fr/api/v2":              false,
		"https://fc.example/api/v2":                              false,
		"https://notdev-franceconnect.fr/api/v2":                 false,
	} {
		if got := IsTestPlatformURL(u); got != want {
			t.Errorf("IsTestPlatformURL(%q) = %t", u, got)
		}
	}
}
