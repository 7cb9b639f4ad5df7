package sandbox

import (
	"io/fs"
	"net/url"
	"strconv"
	"testing"
	"testing/fstest"
)

// FuzzSandboxCaseYAML loads a single case file, as an endpoint case and as a
// token. Load never panics; a case that loads is matched by its own params.
func FuzzSandboxCaseYAML(f *testing.F) {
	// Small embedded files only: the fuzzer spends its time minimising large seeds.
	for _, p := range []string{TokenFolder + "/inactive.yml", qfOp + "/404.yaml"} {
		b, err := fs.ReadFile(EmbeddedFS(), p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"params: {a: 1}\nstatus: 200\npayload: '{}'",
		"params: {a: [], b: ~, c: true, d: 08480, e: 1.5, f: 0x1F, 'g[]': [x]}\nstatus: 404\npayload: '[]'",
		"x: &a [1, *a]\nparams: {p: *a}\nstatus: 200\npayload: '{}'",
		"params: {token: abc}\nstatus: 200\npayload: '{\"token_introspection\": {\"active\": false}}'",
		"\ufeffparams: {A: 'É'}\nstatus: 200\npayload: '{}'",
		"params: !!map {? [a]: b}\nstatus: 200\npayload: '{}'",
		"", "---", "- 1", "params: {a: 99999999999999999999}\nstatus: 200\npayload: '{}'",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []string{"op/case.yml", TokenFolder + "/case.yml"} {
			s, err := Load(fstest.MapFS{p: {Data: data}})
			if err != nil {
				continue
			}
			if p == TokenFolder+"/case.yml" {
				tok := s.Tokens()[0].Params["token"].(string)
				if c, ok := s.Token(tok); !ok || c == nil {
					t.Fatalf("token %q not found after load", tok)
				}
				continue
			}
			c := s.Cases("op")[0]
			q := url.Values{}
			for k, v := range c.Params {
				switch v := v.(type) {
				case []any:
					for _, e := range v {
						q.Add(k, text(e))
					}
					if len(v) == 0 {
						q[k] = []string{}
					}
				default:
					q.Set(k, text(v))
				}
			}
			got, ok := s.Match([]string{"op"}, q, nil)
			if !ok || got != c {
				t.Fatalf("case does not match its own params %v (query %v)", c.Params, q)
			}
			s.NotFound("op")
		}
	})
}

func text(v any) string {
	if i, ok := v.(int); ok {
		return strconv.Itoa(i)
	}
	return v.(string)
}
