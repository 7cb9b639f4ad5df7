package caddyplugin

import (
	"strings"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
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

// TestF05_CitizenQuotaConfig: the citizen quota is 30 an hour by default
// in production mode, off by default in sandbox mode, off when asked, and
// refused when it does not parse.
func TestF05_CitizenQuotaConfig(t *testing.T) {
	for _, tc := range []struct {
		mode, value string
		want        ratelimit.Quota
	}{
		{ModeProduction, "", ratelimit.Quota{Requests: 30, Per: time.Hour}},
		{ModeProduction, "5/m", ratelimit.Quota{Requests: 5, Per: time.Minute}},
		{ModeProduction, "off", ratelimit.Quota{}},
		{ModeSandbox, "", ratelimit.Quota{}},
		{ModeSandbox, "10/h", ratelimit.Quota{Requests: 10, Per: time.Hour}},
	} {
		a := &App{Mode: tc.mode, RateLimits: RateLimitConfig{Citizen: tc.value}}
		if err := a.loadQuotas(); err != nil || a.shared.CitizenQuota != tc.want {
			t.Errorf("%s mode, citizen %q: %v, quota %+v, want %+v", tc.mode, tc.value, err, a.shared.CitizenQuota, tc.want)
		}
	}
	for _, bad := range []string{"0/h", "30", "30/d", "Off"} {
		a := &App{Mode: ModeProduction, RateLimits: RateLimitConfig{Citizen: bad}}
		if err := a.loadQuotas(); err == nil || !strings.Contains(err.Error(), "citizen") {
			t.Errorf("citizen %q: err = %v", bad, err)
		}
	}
}
