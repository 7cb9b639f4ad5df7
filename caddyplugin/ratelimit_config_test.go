package caddyplugin

import (
	"strings"
	"testing"
)

// TestF04_ClientIPv6PrefixConfig: client_ipv6_prefix defaults to 64 and
// is refused outside 32 to 128, whether it comes from a Caddyfile or from
// JSON.
func TestF04_ClientIPv6PrefixConfig(t *testing.T) {
	for bits, want := range map[int]int{0: 64, 32: 32, 48: 48, 64: 64, 128: 128} {
		a := &App{RateLimits: RateLimitConfig{ClientIPv6Prefix: bits}}
		if err := a.loadQuotas(); err != nil || a.RateLimits.ClientIPv6Prefix != want {
			t.Errorf("client_ipv6_prefix %d: %v, now %d, want %d", bits, err, a.RateLimits.ClientIPv6Prefix, want)
		}
	}
	for _, bits := range []int{-1, 1, 31, 129, 256} {
		a := &App{RateLimits: RateLimitConfig{ClientIPv6Prefix: bits}}
		if err := a.loadQuotas(); err == nil || !strings.Contains(err.Error(), "client_ipv6_prefix") {
			t.Errorf("client_ipv6_prefix %d: err = %v", bits, err)
		}
	}
}
