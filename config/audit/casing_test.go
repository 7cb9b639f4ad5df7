package audit

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// Types shaped as Caddy's: a module map of apps, handlers found by their
// inline key, a nested module, and free-form maps.
type (
	caseConfig struct {
		Admin *struct {
			Listen string `json:"listen,omitempty"`
		} `json:"admin,omitempty"`
		Apps map[string]json.RawMessage `json:"apps,omitempty" caddy:"namespace="`
	}
	caseHTTP struct {
		Servers map[string]*struct {
			Routes []struct {
				Handle []json.RawMessage `json:"handle,omitempty" caddy:"namespace=http.handlers inline_key=handler"`
			} `json:"routes,omitempty"`
		} `json:"servers,omitempty"`
	}
	caseProxy struct {
		Transport json.RawMessage     `json:"transport,omitempty" caddy:"namespace=http.reverse_proxy.transport inline_key=protocol"`
		Headers   map[string][]string `json:"headers,omitempty"`
	}
	caseTransport struct {
		TLS *struct {
			InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
		} `json:"tls,omitempty"`
	}
	caseApp struct {
		Mode      string `json:"mode,omitempty"`
		Upstreams map[string]struct {
			Header map[string]string `json:"header,omitempty"`
		} `json:"upstreams,omitempty"`
	}
)

// req: H02
// TestPA28KeyCase: keys Caddy's decoding reads case-insensitively are
// flagged wherever the Go types put a struct field (the app, the admin
// block, a handler, a module inside it, a Unicode fold: ſ for s); keys of
// free-form maps (server, provider, header names) and of modules this
// binary does not know are not.
func TestPA28KeyCase(t *testing.T) {
	types := map[string]reflect.Type{
		"passerelle": reflect.TypeFor[caseApp](), "http": reflect.TypeFor[caseHTTP](),
		"http.handlers.reverse_proxy": reflect.TypeFor[*caseProxy](), "http.reverse_proxy.transport.http": reflect.TypeFor[caseTransport](),
	}
	config := `{
	"admin": {"Listen": "0.0.0.0:2019"},
	"apps": {
		"passerelle": {"mode": "production", "Mode": "sandbox", "upstreams": {"CNAV": {"header": {"Authorization": "x"}}}},
		"http": {"servers": {"Public": {"routes": [{"handle": [
			{"handler": "reverse_proxy", "headers": {"X-Test": ["1"]},
			 "transport": {"protocol": "http", "tls": {"inſecure_skip_verify": true}}},
			{"handler": "unknown_module", "Whatever": 1}
		]}]}}}
	}
}`
	fs, err := Run([]byte(config), Options{ConfigType: reflect.TypeFor[caseConfig](), ModuleType: func(id string) (reflect.Type, bool) {
		t, ok := types[id]
		return t, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		if f.Rule == "PA28" {
			got = append(got, f.Path)
			if f.Severity != High {
				t.Errorf("severity %v", f.Severity)
			}
		}
	}
	want := []string{
		"admin.Listen",
		"apps.http.servers.Public.routes[0].handle[0].transport.tls.inſecure_skip_verify",
		"apps.passerelle.Mode",
	}
	if !slices.Equal(got, want) {
		t.Errorf("PA28 at %q, want %q", got, want)
	}
	// Without the types, nothing can be said.
	if fs, _ := Run([]byte(config), Options{}); slices.Contains(rulesOf(fs), "PA28") {
		t.Error("PA28 without types")
	}
}
