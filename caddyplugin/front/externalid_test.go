package front

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
)

// TestExternalIDHandedBack: the app's reference of its procedure, given
// to the button, rides the start form and comes back with the identity,
// in the assertion and in the plain headers, so that an app with several
// procedures in progress knows which one the data is for. A value that is
// not an identifier (free text, markup, over 100 characters) is neither
// put in the form nor handed back, and the warning does not quote it.
func TestExternalIDHandedBack(t *testing.T) {
	fl := newFlow(t)
	core, logs := observer.New(zap.InfoLevel)
	fl.f.logger, fl.f.plain = zap.New(core), true
	b := fl.browser(t)

	_, page := b.do(http.MethodGet, fl.site.URL+"/.passerelle/bouton?return_to=/demarche/&moment=transmit&external_id=D-2026:0042", nil)
	if !strings.Contains(page, `name="external_id" value="D-2026:0042"`) {
		t.Fatalf("the button does not carry the external id:\n%s", page)
	}
	_, page = b.do(http.MethodGet, fl.site.URL+"/.passerelle/bouton?return_to=/demarche/&external_id="+url.QueryEscape(`"><script>`), nil)
	if strings.Contains(page, "external_id") || strings.Contains(page, "<script>") {
		t.Fatalf("the button carries an invalid external id:\n%s", page)
	}

	for _, tc := range []struct{ sent, want string }{
		{"D-2026:0042", "D-2026:0042"},
		{"CANARY dossier de Mme DUBOIS", ""},
		{strings.Repeat("a", 101), ""},
	} {
		form := loginAt("/demarche/", handoff.MomentTransmit)
		form.Set("external_id", tc.sent)
		h, c := handedOff(t, fl.browser(t), form, "/demarche/")
		if c.ExternalID != tc.want || h.Get(handoff.HeaderExternalID) != tc.want {
			t.Errorf("external id %q handed back as %q (assertion), %q (header), want %q", tc.sent, c.ExternalID, h.Get(handoff.HeaderExternalID), tc.want)
		}
	}
	if warned := logs.FilterMessageSnippet("external_id refused").Len(); warned != 2 {
		t.Errorf("%d warnings for the 2 refused external ids", warned)
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message+jsonOf(e.ContextMap()), "CANARY") {
			t.Errorf("a log line quotes the external id: %s", e.Message)
		}
	}
}
