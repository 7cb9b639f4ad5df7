package compose_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// caddyHTTPAttributes are the attributes of Caddy's tracing handler
// (otelhttp server spans) that carry neither a person nor a credential.
// Left out on purpose: url.path (a legacy app's paths may hold ids),
// url.query, client.address, network.peer.address, user_agent.original,
// server.address, the body sizes.
var caddyHTTPAttributes = []string{
	"http.request.method", "http.response.status_code", "http.route", "url.scheme", "network.protocol.version",
}

// neverAllowed may carry personal data or credentials, whatever the code.
var neverAllowed = []string{
	"url.query", "url.full", "url.path", "client.address", "network.peer.address", "user_agent.original",
	"http.request.header.authorization", "enduser.id",
}

// codeAttributes returns the span attribute keys the gateway's code sets:
// attribute.Key("…") and attribute.String/Int/Bool…("…", …) literals in
// the non-test Go files of caddyplugin/ (pipeline/tracing.go and
// front/observe.go today; any other file that adds one counts too).
func codeAttributes(t *testing.T) []string {
	t.Helper()
	keys := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("../../caddyplugin", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "attribute" {
				return true
			}
			switch sel.Sel.Name {
			case "Key", "String", "StringSlice", "Int", "Int64", "Int64Slice", "IntSlice", "Bool", "BoolSlice", "Float64", "Float64Slice", "Stringer":
			default:
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: attribute.%s with a key that is not a literal: list it by hand", fset.Position(call.Pos()), sel.Sel.Name)
				return true
			}
			k, _ := strconv.Unquote(lit.Value)
			keys[k] = true
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	})
}

func TestCollectorRedaction(t *testing.T) {
	var col struct {
		Receivers struct {
			OTLP struct {
				Protocols struct {
					GRPC struct {
						TLS struct {
							CertFile string `json:"cert_file"`
							KeyFile  string `json:"key_file"`
						} `json:"tls"`
					} `json:"grpc"`
				} `json:"protocols"`
			} `json:"otlp"`
		} `json:"receivers"`
		Processors struct {
			MemoryLimiter map[string]any `json:"memory_limiter"`
			Redaction     struct {
				AllowAllKeys  *bool    `json:"allow_all_keys"`
				AllowedKeys   []string `json:"allowed_keys"`
				IgnoredKeys   []string `json:"ignored_keys"`
				AllowedValues []string `json:"allowed_values"`
				BlockedValues []string `json:"blocked_values"`
				Summary       string   `json:"summary"`
			} `json:"redaction"`
			Batch map[string]any `json:"batch"`
		} `json:"processors"`
		Exporters map[string]any `json:"exporters"`
		Service   struct {
			Pipelines map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
				Exporters  []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	readYAML(t, "otel/collector.yaml", &col)
	r := col.Processors.Redaction
	switch {
	case r.AllowAllKeys == nil || *r.AllowAllKeys:
		t.Error("redaction: allow_all_keys must be false")
	case r.Summary != "silent":
		t.Errorf("redaction: summary %q, want silent (the names of dropped attributes are not sent)", r.Summary)
	case len(r.IgnoredKeys) > 0 || len(r.AllowedValues) > 0:
		t.Error("redaction: ignored_keys or allowed_values bypass the masking")
	case col.Processors.MemoryLimiter == nil || col.Processors.Batch == nil:
		t.Error("no memory_limiter or batch processor")
	case col.Receivers.OTLP.Protocols.GRPC.TLS.CertFile == "" || col.Receivers.OTLP.Protocols.GRPC.TLS.KeyFile == "":
		t.Error("the OTLP receiver does not serve TLS (the gateway's audit requires an https:// endpoint)")
	}
	traces, ok := col.Service.Pipelines["traces"]
	if !ok || !slices.Equal(traces.Receivers, []string{"otlp"}) || len(traces.Exporters) == 0 {
		t.Fatalf("traces pipeline: %+v", traces)
	}
	// memory_limiter first, redaction before anything that could export
	// or copy, batch last.
	if !slices.Equal(traces.Processors, []string{"memory_limiter", "redaction", "batch"}) {
		t.Errorf("traces processors %v, want memory_limiter, redaction, batch", traces.Processors)
	}
	for _, e := range traces.Exporters {
		if _, ok := col.Exporters[e]; !ok {
			t.Errorf("exporter %s not configured", e)
		}
	}

	// allowed_keys is exactly the code's attributes plus the safe HTTP
	// ones: a new attribute fails here until it is judged and listed, and
	// nothing is allowed that nobody emits.
	code := codeAttributes(t)
	for _, k := range []string{"passerelle.endpoint", "passerelle.habilitation.id", "passerelle.front.result"} {
		if !slices.Contains(code, k) {
			t.Fatalf("attribute %s not found in caddyplugin/: the source scan is broken (found %v)", k, code)
		}
	}
	want := slices.Sorted(slices.Values(slices.Concat(code, caddyHTTPAttributes)))
	if got := slices.Sorted(slices.Values(r.AllowedKeys)); !slices.Equal(slices.Compact(got), want) || len(got) != len(r.AllowedKeys) {
		t.Errorf("allowed_keys %v\nwant exactly %v\n(the code's span attributes, caddyplugin/…, plus %v)", got, want, caddyHTTPAttributes)
	}
	for _, k := range neverAllowed {
		if slices.Contains(r.AllowedKeys, k) {
			t.Errorf("allowed_keys holds %s", k)
		}
	}

	// blocked_values: Go regular expressions (the collector's) that mask
	// tokens and identities, and none of the values the allowed keys
	// really carry. The samples are made up.
	var blocked []*regexp.Regexp
	for _, v := range r.BlockedValues {
		re, err := regexp.Compile(v)
		if err != nil {
			t.Fatalf("blocked value %q: %v", v, err)
		}
		blocked = append(blocked, re)
	}
	masked := func(s string) bool {
		return slices.ContainsFunc(blocked, func(re *regexp.Regexp) bool { return re.MatchString(s) })
	}
	for what, sample := range map[string]string{
		"JWS":          "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
		"JWE":          "eyJhbGciOiJSU0EtT0FFUC0yNTYifQ.a2V5.aXY.Y2lwaGVydGV4dA.dGFn",
		"bearer":       "Bearer 3f2b8c1e6d1a4c559a572f0d8e6b9c11",
		"API token":    "pa_" + strings.Repeat("Ab9_", 11),
		"e-mail":       "prenom.nom@example.org",
		"NIR":          "299019999999999",
		"spaced NIR":   "2 99 01 99 999 999 99",
		"Corsican NIR": "199012A99999999",
		"IBAN":         "FR7699999999999999999999999",
		"spaced IBAN":  "FR76 9999 9999 9999 9999 9999 999",
	} {
		if !masked("x " + sample + " y") {
			t.Errorf("blocked_values do not mask a %s", what)
		}
	}
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	legit := []string{"allow", "deny", "error", "l1", "l2", "checktoken", "2xx", "4xx", "5xx", "GET", "200", "429", "https", "1.1", "2", "12345", "ok", "login_required", "modality_denied", "client_certificate_mismatch"}
	for _, ep := range cat.Endpoints {
		legit = append(legit, ep.ID, ep.Path, ep.ProviderName)
	}
	for _, v := range legit {
		if masked(v) {
			t.Errorf("blocked_values mask %q, a value an allowed key carries", v)
		}
	}
}
