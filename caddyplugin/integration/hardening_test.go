package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// chattyProvider answers the quotient familial with every header a
// provider stack may add: cookies, version banners, proxy traces, internal
// headers and hop-by-hop fields. It counts the requests it receives.
func chattyProvider(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Set-Cookie", "provider-session=CANARYCOOKIE; Path=/")
		h.Set("Server", "provider-httpd/2.4.1")
		h.Set("X-Powered-By", "PHP/5.6")
		h.Set("Via", "1.1 provider-edge")
		h.Set("X-Backend-Server", "cnaf-app-07.internal")
		h.Set("X-Internal-Trace", "CANARYTRACE")
		h.Set("Connection", "X-Provider-Hop")
		h.Set("X-Provider-Hop", "CANARYHOP")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Upgrade", "h2c")
		h.Set("Cache-Control", "public, max-age=3600")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, qfBody)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestD10_H05_AnswerHeaders: the caller's answer carries the gateway's own
// headers (no-store, JSON with its charset, nosniff), whatever the provider
// answered, and none of the provider's cookies, banners, proxy traces or
// internal headers; no answer of the API listener names its software, and
// no debug or admin path answers there.
// req: D10, H05
func TestD10_H05_AnswerHeaders(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNotFound, http.StatusInternalServerError} {
		prov, _ := chattyProvider(t, status)
		start(t, options{MaxEntries: 1101 + status, Recorder: prov.URL})
		a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
		if status == http.StatusOK && a.status != http.StatusOK {
			t.Fatalf("provider 200: status %d %s", a.status, a.body)
		}
		if status != http.StatusOK && a.status < 400 {
			t.Fatalf("provider %d: status %d", status, a.status)
		}
		want := map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json; charset=utf-8", "X-Content-Type-Options": "nosniff"}
		for k, v := range want {
			if got := a.header.Get(k); got != v {
				t.Errorf("provider %d: %s %q, want %q", status, k, got, v)
			}
		}
		for _, h := range []string{"Set-Cookie", "Server", "X-Powered-By", "Via", "X-Backend-Server", "X-Internal-Trace", "X-Provider-Hop", "Keep-Alive", "Upgrade"} {
			if v, ok := a.header[h]; ok {
				t.Errorf("provider %d: %s %q relayed to the caller", status, h, v)
			}
		}
		if v := contains(a.body, "CANARYCOOKIE", "CANARYTRACE", "CANARYHOP", "provider-httpd", "cnaf-app-07"); v != "" {
			t.Errorf("provider %d: %s reached the body", status, v)
		}
	}

	// The API listener's other answers: refusals, unknown paths, the
	// published keys, and the paths a scanner probes.
	for _, target := range []string{qf("recipient=" + siret), "/nope", "/.well-known/passerelle/jwks.json",
		"/debug/pprof/", "/debug/vars", "/metrics", "/config/", "/server-status", "/live", "/ready"} {
		a := get(t, gatewayPort, target)
		if s := a.header.Get("Server"); s != "" {
			t.Errorf("%s: Server %q", target, s)
		}
		if strings.HasPrefix(target, "/.well-known/") {
			continue
		}
		if a.status == http.StatusOK {
			t.Errorf("%s answered 200 on the API listener: %.200s", target, a.body)
		}
		if v := contains(a.body, "Caddy", "caddy", "Go-http", "goroutine", "v2.", "memstats"); v != "" {
			t.Errorf("%s: the body discloses %q", target, v)
		}
	}
}

// TestD03_HopByHop: hop-by-hop fields go neither way, those a Connection
// field names included; a protocol upgrade is not performed.
// req: D03
func TestD03_HopByHop(t *testing.T) {
	prov, _ := chattyProvider(t, http.StatusOK)
	rec := newRecorder(t)
	start(t, options{MaxEntries: 1201, Recorder: rec.srv.URL})
	hop := []string{"Connection", "X-Caller-Hop", "X-Caller-Hop", "CANARYCALLERHOP", "Keep-Alive", "timeout=99",
		"TE", "trailers", "Trailer", "X-Late", "Proxy-Connection", "keep-alive", "Upgrade", "websocket"}
	a := get(t, recordPort, qf("recipient="+siret), append(bearer("cnaf_qfv2"), hop...)...)
	if a.status != http.StatusOK {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	got := rec.last(t)
	for _, h := range []string{"X-Caller-Hop", "Keep-Alive", "Te", "Trailer", "Proxy-Connection", "Upgrade"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("%s %q reached the provider", h, v)
		}
	}
	if c := got.Header.Get("Connection"); c != "" && !strings.EqualFold(c, "close") {
		t.Errorf("Connection %q reached the provider", c)
	}

	// The other way: the provider's hop-by-hop fields stop at the gateway.
	start(t, options{MaxEntries: 1202, Recorder: prov.URL})
	a = get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	for _, h := range []string{"X-Provider-Hop", "Keep-Alive", "Upgrade"} {
		if v, ok := a.header[h]; ok {
			t.Errorf("%s %q reached the caller", h, v)
		}
	}

	// An upgrade request gets an answer, never 101 and a raw tunnel.
	conn := dial(t, recordPort)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer cnaf_qfv2\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", qf("recipient="+siret))
	if status := readStatus(t, conn); status == http.StatusSwitchingProtocols {
		t.Error("the gateway switched protocols")
	}
}

// TestD11_Framing: a request with both Content-Length and
// Transfer-Encoding, with two different lengths, or with a transfer coding
// other than chunked, is refused and its connection closed, so that no
// second request can hide in its body; the provider never hears of it.
// (Go's server reads a CL+TE request by its chunks and keeps the
// connection: the gateway's handlers close it, internal/framing.)
// req: D11
func TestD11_Framing(t *testing.T) {
	prov, calls := chattyProvider(t, http.StatusOK)
	start(t, options{MaxEntries: 1301, Recorder: prov.URL})
	smuggled := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer cnaf_qfv2\r\n\r\n", qf("recipient="+siret))
	cases := map[string]string{
		"GET with CL and TE": fmt.Sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer cnaf_qfv2\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s",
			qf("recipient="+siret), smuggled),
		"CL and TE": fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer cnaf_qfv2\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s",
			qf("recipient="+siret), smuggled),
		"two lengths": fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer cnaf_qfv2\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n%s",
			qf("recipient="+siret), len(smuggled), smuggled),
		"TE not chunked": fmt.Sprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer cnaf_qfv2\r\nTransfer-Encoding: identity\r\n\r\n%s",
			qf("recipient="+siret), smuggled),
	}
	for name, raw := range cases {
		if status := firstAnswerThenClosed(t, name, recordPort, raw); status < 400 {
			t.Errorf("%s: status %d, want a refusal", name, status)
		}
	}
	// The other Passerelle handlers close too: the published keys and the
	// health probe answer, then the connection ends.
	for _, target := range []struct {
		port int
		path string
	}{{gatewayPort, "/.well-known/passerelle/jwks.json"}, {internalPort, "/live"}} {
		raw := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s", target.path, smuggled)
		firstAnswerThenClosed(t, target.path, target.port, raw)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the provider was called %d times", n)
	}
}

// TestC01_HabilitationFromTokenAudienceOnly: a caller cannot pick a
// habilitation by header, path or query. A token whose audience pairs with
// no habilitation stays refused (403) whatever client id or habilitation
// it names elsewhere; a paired token naming another caller's gets exactly
// its own answer, from the same provider request.
// req: C01
func TestC01_HabilitationFromTokenAudienceOnly(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 1401, Recorder: rec.srv.URL})
	const habID = "sandbox-toutes-donnees"
	claims := []string{"X-Client-Id", fsClientID, "X-Passerelle-Habilitation", habID, "X-Habilitation-Id", habID,
		"Client-Id", fsClientID, "X-Forwarded-Client-Id", fsClientID}
	a := get(t, recordPort, qf("recipient="+siret), append(bearer("unpaired_service"), claims...)...)
	if a.status != http.StatusForbidden {
		t.Fatalf("unpaired token with a claimed client id: status %d %s", a.status, a.body)
	}
	for _, q := range []string{"&client_id=" + fsClientID, "&habilitation=" + habID, "&aud=" + fsClientID} {
		if a := get(t, recordPort, qf("recipient="+siret+q), bearer("unpaired_service")...); a.status != http.StatusForbidden {
			t.Errorf("unpaired token, %s: status %d %s", q, a.status, a.body)
		}
	}
	if a := get(t, recordPort, qfPath+"/"+fsClientID+"?recipient="+siret, bearer("unpaired_service")...); a.status != http.StatusNotFound {
		t.Errorf("a client id in the path: status %d %s", a.status, a.body)
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("the provider was called %d times for an unpaired caller", n)
	}

	plain := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if plain.status != http.StatusOK {
		t.Fatalf("paired token: status %d %s", plain.status, plain.body)
	}
	asked := rec.last(t).URL.String()
	spoofed := get(t, recordPort, qf("recipient="+siret), append(bearer("cnaf_qfv2"), claims...)...)
	if spoofed.status != http.StatusOK || string(spoofed.body) != string(plain.body) || rec.last(t).URL.String() != asked {
		t.Errorf("claims changed a paired token's answer: %d %s\nwant %s", spoofed.status, spoofed.body, plain.body)
	}
}

// TestD04_UntrustedXFFIgnored: without trusted_proxies, the client
// address of the quotas is the TCP peer: a caller rotating X-Forwarded-For
// (or Forwarded, X-Real-IP) does not get a new quota.
// req: D04
func TestD04_UntrustedXFFIgnored(t *testing.T) {
	cfg := ipv6QuotaConfig(t, 0)
	trusted := "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\tclient_ip_headers X-Forwarded-For\n\t}\n"
	if !strings.Contains(cfg, trusted) {
		t.Fatal("ipv6QuotaConfig changed: update this test")
	}
	// A core of its own (max_entries): the loopback peer's quota is this
	// test's. The first request may take it (401: no token), or find it
	// taken by an earlier run in this process; the others may not.
	cfg = strings.Replace(strings.Replace(cfg, trusted, "", 1), "max_entries 14140", "max_entries 14150", 1)
	setEnv(t)
	caddytest.NewTester(t).InitServer(cfg, "caddyfile")
	g := freshGroup()
	addr := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", g>>8, g&0xff, i) }
	get(t, ipv6GatewayPort, qf("recipient="+siret), "X-Forwarded-For", addr(1))
	for i, h := range [][]string{
		{"X-Forwarded-For", addr(2)},
		{"X-Forwarded-For", addr(3) + ", " + addr(4)},
		{"Forwarded", "for=" + addr(5)},
		{"X-Real-IP", addr(6)},
	} {
		if a := get(t, ipv6GatewayPort, qf("recipient="+siret), h...); a.status != http.StatusTooManyRequests {
			t.Errorf("case %d (%s): status %d, want 429: the header chose the quota key", i, h[0], a.status)
		}
	}
}

// firstAnswerThenClosed sends raw on a new connection to port, reads one
// answer and returns its status, and fails unless the server then closes
// the connection (EOF, not a timeout): a request hidden after the first
// one's chunks is never read.
func firstAnswerThenClosed(t *testing.T, name string, port int, raw string) int {
	t.Helper()
	conn := dial(t, port)
	_, _ = io.WriteString(conn, raw)
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	second, err := http.ReadResponse(r, nil)
	switch {
	case err == nil:
		second.Body.Close()
		t.Errorf("%s: a second answer (%d) on the connection", name, second.StatusCode)
	case !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		t.Errorf("%s: the connection stayed open (%v)", name, err)
	}
	return resp.StatusCode
}

func dial(t *testing.T, port int) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readStatus(t *testing.T, conn net.Conn) int {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
