package front

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// handlersInOrder lists the handler names of an adapted configuration in
// the order Caddy chains them (routes in order, subroutes inside).
func handlersInOrder(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if h, ok := x["handler"].(string); ok {
			out = append(out, h)
		}
		for _, k := range []string{"apps", "http", "servers", "srv0", "routes", "handle"} {
			if c, ok := x[k]; ok {
				out = append(out, handlersInOrder(c)...)
			}
		}
	case []any:
		for _, c := range x {
			out = append(out, handlersInOrder(c)...)
		}
	}
	return out
}

// TestFrontRunsBeforeHandleBlocks: in a site, passerelle_front runs before
// every handle, handle_path and route block, not only before the site's
// own reverse_proxy: a proxy inside such a block (handle /api/* {
// reverse_proxy app }) would otherwise answer requests the front never saw,
// its X-Passerelle-* headers unstripped (a client could forge the
// citizen's identity) and its protected paths served without a session.
func TestFrontRunsBeforeHandleBlocks(t *testing.T) {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`http://127.0.0.1:9183 {
	handle /api/* {
		reverse_proxy 127.0.0.1:9185
	}
	handle_path /old/* {
		reverse_proxy 127.0.0.1:9186
	}
	route /r/* {
		reverse_proxy 127.0.0.1:9187
	}
	passerelle_front {
		base_url http://127.0.0.1:9183
		franceconnect {
			issuer http://127.0.0.1:9181/api/v2
			client_id abc
			client_secret def
		}
		protect /api/*
	}
	reverse_proxy 127.0.0.1:9188
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	chain := handlersInOrder(doc)
	front, proxy := slices.Index(chain, "passerelle_front"), slices.Index(chain, "reverse_proxy")
	if front < 0 || proxy < 0 || front > proxy {
		t.Fatalf("handlers in order %v: passerelle_front must come before every reverse_proxy", chain)
	}
}
