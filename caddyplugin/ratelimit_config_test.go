package caddyplugin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

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

// TestF04_FailedAuthQuotaConfig: the failed authentication quota is 20 a
// minute by default in production mode, off by default in sandbox mode,
// off when asked in sandbox mode only, and refused when it does not parse.
func TestF04_FailedAuthQuotaConfig(t *testing.T) {
	for _, tc := range []struct {
		mode, value string
		want        ratelimit.Quota
	}{
		{ModeProduction, "", ratelimit.Quota{Requests: 20, Per: time.Minute}},
		{ModeProduction, "5/m", ratelimit.Quota{Requests: 5, Per: time.Minute}},
		{ModeSandbox, "off", ratelimit.Quota{}},
		{ModeSandbox, "", ratelimit.Quota{}},
		{ModeSandbox, "10/m", ratelimit.Quota{Requests: 10, Per: time.Minute}},
	} {
		a := &App{Mode: tc.mode, RateLimits: RateLimitConfig{FailedAuth: tc.value}}
		if err := a.loadQuotas(); err != nil || a.shared.FailedAuthQuota != tc.want {
			t.Errorf("%s mode, failed_auth %q: %v, quota %+v, want %+v", tc.mode, tc.value, err, a.shared.FailedAuthQuota, tc.want)
		}
	}
	for _, bad := range []string{"0/m", "20", "Off", "off"} {
		a := &App{Mode: ModeProduction, RateLimits: RateLimitConfig{FailedAuth: bad}}
		if err := a.loadQuotas(); err == nil || !strings.Contains(err.Error(), "failed_auth") {
			t.Errorf("failed_auth %q: err = %v", bad, err)
		}
	}
}

// TestF06_InstancesConfig: rate_limit instances reaches the limiter the
// handlers share (each instance's share of a quota while Redis fails) when
// the configuration starts, and the previous share is back if it stops
// with none started after it; from 1 to 1000: the Caddyfile refuses 0 and
// JSON a negative count.
func TestF06_InstancesConfig(t *testing.T) {
	f := newFixture(t, func(a *App) { a.RateLimits.Instances = 3 })
	if got := f.h.pipe.Limiter.Share(); got != 1 {
		t.Fatalf("share %d before the configuration starts, want 1", got)
	}
	if err := f.h.app.Start(); err != nil {
		t.Fatal(err)
	}
	if got := f.h.pipe.Limiter.Share(); got != 3 {
		t.Fatalf("share %d, want 3", got)
	}
	// Stopped with no configuration started after it (Caddy keeps the
	// running one when another app of the new one fails to start): the
	// share it replaced is back.
	_ = f.h.app.Stop()
	if got := f.h.pipe.Limiter.Share(); got != 1 {
		t.Fatalf("share %d after the configuration stopped, want 1", got)
	}
	for _, n := range []int{-1, 1001} {
		a := &App{RateLimits: RateLimitConfig{Instances: n}}
		if err := a.loadQuotas(); err == nil || !strings.Contains(err.Error(), "instances") {
			t.Errorf("instances %d: err = %v", n, err)
		}
	}
	for _, src := range []string{"instances 0", "instances 1001", "instances two"} {
		if _, err := parseGlobal(t, "passerelle {\n\trate_limit {\n\t\t"+src+"\n\t}\n}"); err == nil {
			t.Errorf("%s: accepted", src)
		}
	}
	app, err := parseGlobal(t, "passerelle {\n\trate_limit {\n\t\tinstances 4\n\t}\n}")
	if err != nil || app.RateLimits.Instances != 4 {
		t.Fatalf("instances 4: %v, %+v", err, app)
	}
}

// parseGlobal parses the passerelle global option as the Caddyfile adapter
// does, into the app's JSON and back.
func parseGlobal(t *testing.T, src string) (*App, error) {
	t.Helper()
	v, err := parseGlobalOption(caddyfile.NewTestDispenser(src), nil)
	if err != nil {
		return nil, err
	}
	app := new(App)
	if err := json.Unmarshal(v.(httpcaddyfile.App).Value, app); err != nil {
		t.Fatal(err)
	}
	return app, nil
}
