package front

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
)

// handedOff logs b in at FranceConnect as angela, in moment, returning to
// path, visits path, and returns the X-Passerelle-* headers the app
// received with it and the assertion's claims (its signature is checked
// elsewhere: TestAssertionVerifies).
func handedOff(t *testing.T, b *flowBrowser, form url.Values, path string) (http.Header, handoff.Claims) {
	t.Helper()
	if resp := b.loginForm(form, "angela"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	b.do(http.MethodGet, b.fl.site.URL+path, nil)
	_, h := b.fl.appReached()
	sent := http.Header{}
	for name, v := range h {
		if strings.HasPrefix(name, handoff.Prefix) {
			sent[name] = v
		}
	}
	var c handoff.Claims
	parts := strings.Split(sent.Get(handoff.HeaderAssertion), ".")
	if len(parts) != 3 {
		t.Fatalf("assertion of %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &c) != nil {
		t.Fatal("unreadable assertion payload")
	}
	return sent, c
}

// loginAt is the start form of a login in moment returning to path.
func loginAt(path, moment string) url.Values {
	return url.Values{"return_to": {path}, "moment": {moment}}
}

// req: F02
// TestHandOffBoundedBySize: a dataset whose data would take the hand-off
// over max_handoff_bytes is not handed off (nor kept in the session): the
// app receives error 00413 in its place, in both channels, and every
// other dataset as it came; the hand-off stays within the bound (an app
// server refuses larger headers, with no hint to anyone), and the warning
// names the dataset and its size, never its content. With a larger bound,
// the same answer is handed off whole.
func TestHandOffBoundedBySize(t *testing.T) {
	const canary = "CANARY-DATASET-CONTENT"
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte(`{"data":{"enfants":"` + strings.Repeat(canary, 400) + `"}}`))
		case "/small":
			_, _ = w.Write([]byte(`{"data":{"valeur":312}}`))
		}
	}))
	defer remote.Close()

	for _, tc := range []struct {
		max     int
		dropped bool
	}{{8 << 10, true}, {64 << 10, false}} {
		fl := newFlow(t)
		core, logs := observer.New(zap.InfoLevel)
		fl.f.logger, fl.f.plain, fl.f.MaxHandoffBytes = zap.New(core), true, tc.max
		fl.f.DatasetTimeout = caddy.Duration(5 * time.Second)
		fl.f.Datasets = []Dataset{
			{Name: "big_one", Route: "/big", Recipient: "21750001600019", Remote: remote.URL},
			{Name: "small", Route: "/small", Recipient: "21750001600019", Remote: remote.URL},
		}
		sent, claims := handedOff(t, fl.browser(t), loginAt("/espace/", handoff.MomentLogin), "/espace/")
		size := handoff.Bytes(sent)

		var plain handoff.Dataset
		raw, err := base64.RawURLEncoding.DecodeString(sent.Get(handoff.DataHeader("big_one")))
		if err != nil || json.Unmarshal(raw, &plain) != nil {
			t.Fatalf("max %d: the big dataset's header is unreadable", tc.max)
		}
		signed := claims.Datasets
		if small := signed["small"]; small.Status != handoff.StatusOK || string(small.Data) != `{"valeur":312}` {
			t.Errorf("max %d: the small dataset was not handed off as it came: %+v", tc.max, small)
		}
		if !tc.dropped {
			if plain.Status != handoff.StatusOK || signed["big_one"].Status != handoff.StatusOK || size <= 8<<10 {
				t.Errorf("max %d: the big dataset was not handed off whole (%d bytes)", tc.max, size)
			}
			if logs.Len() != 0 {
				t.Errorf("max %d: warned %v", tc.max, logs.All()[0].Message)
			}
			continue
		}
		if size > tc.max {
			t.Errorf("the hand-off adds %d bytes to each request, over max_handoff_bytes %d", size, tc.max)
		}
		for channel, d := range map[string]handoff.Dataset{"headers": plain, "assertion": signed["big_one"]} {
			if d.Status != handoff.StatusError || d.Error == nil || d.Error.Code != handoff.CodeTooLarge || len(d.Data) != 0 {
				t.Errorf("%s: the big dataset has status %s, error %v and %d bytes of data, want error %s without data",
					channel, d.Status, d.Error, len(d.Data), handoff.CodeTooLarge)
			}
		}
		warned := logs.FilterMessageSnippet("too large").All()
		if len(warned) != 1 || warned[0].ContextMap()["dataset"] != "big_one" || warned[0].ContextMap()["dataset_bytes"] == nil {
			t.Errorf("warnings: %v", logs.All())
		}
		for _, e := range logs.All() {
			if strings.Contains(e.Message, canary) || strings.Contains(jsonOf(e.ContextMap()), canary) {
				t.Errorf("a log line carries the dataset's content: %s", e.Message)
			}
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestHandOffBoundsLargeErrors: a dataset's error is bounded as its data
// is: an error whose texts take the hand-off over the bound (a remote
// API Particulier writes them) is replaced by 00413, and the datasets
// carrying data are kept.
func TestHandOffBoundsLargeErrors(t *testing.T) {
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/error" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"errors":[{"code":"37003","title":"Absent","detail":"` + strings.Repeat("x", 12<<10) + `"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"data":{"valeur":312}}`))
	}))
	defer remote.Close()
	fl := newFlow(t)
	fl.f.MaxHandoffBytes, fl.f.DatasetTimeout = 8<<10, caddy.Duration(5*time.Second)
	fl.f.Datasets = []Dataset{
		{Name: "wordy", Route: "/error", Recipient: "21750001600019", Remote: remote.URL},
		{Name: "small", Route: "/small", Recipient: "21750001600019", Remote: remote.URL},
	}
	sent, claims := handedOff(t, fl.browser(t), loginAt("/espace/", handoff.MomentLogin), "/espace/")
	if size := handoff.Bytes(sent); size > 8<<10 {
		t.Errorf("the hand-off adds %d bytes, over 8 KiB", size)
	}
	signed := claims.Datasets
	if d := signed["wordy"]; d.Error == nil || d.Error.Code != handoff.CodeTooLarge {
		t.Errorf("the wordy error was handed off whole (%d bytes of detail)", len(d.Error.Detail))
	}
	if d := signed["small"]; d.Status != handoff.StatusOK || string(d.Data) != `{"valeur":312}` {
		t.Errorf("the dataset with data was dropped: %s %s", d.Status, d.Data)
	}
}
