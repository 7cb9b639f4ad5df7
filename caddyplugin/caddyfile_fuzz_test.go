package caddyplugin_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	_ "github.com/passerelle-gw/passerelle/caddyplugin"
	_ "github.com/passerelle-gw/passerelle/caddyplugin/front"
	_ "github.com/passerelle-gw/passerelle/caddyplugin/sandbox"
)

// FuzzH07_Caddyfile: adapting any Caddyfile, starting from the project's
// own (every Passerelle directive and option), returns a configuration or
// an error, never panics: the global option, the passerelle, front,
// health, JWKS, DataPass and sandbox directives parse untrusted text.
// req: H07
func FuzzH07_Caddyfile(f *testing.F) {
	for _, path := range []string{"../Caddyfile.example", "../deploy/Caddyfile.production", "../deploy/bench/Caddyfile",
		"../deploy/bench/upstream.Caddyfile", "../deploy/compose/Caddyfile"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	golden, _ := filepath.Glob("integration/caddyfile_adapt/*.caddyfiletest")
	for _, path := range golden {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(string(data))
		}
	}
	f.Add("{\n\tpasserelle {\n\t\tcache {\n\t\t\tredis {\n\t\t\t}\n\t\t}\n\t}\n}\n")
	f.Add(":1 {\n\tpasserelle_front {\n\t\tdataset qf /x {\n\t\t}\n\t\tprovider {\n\t\t}\n\t}\n}\n")
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	f.Fuzz(func(t *testing.T, body string) {
		_, _, _ = adapter.Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	})
}
