package integration

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// Ports of the client-network quota tests, used nowhere else.
const (
	ipv6GatewayPort = 18140
	ipv6IssuerPort  = 18141 // never listened on: no request of these tests reaches FranceConnect
)

// ipv6QuotaConfig is a gateway behind a trusted proxy (127.0.0.1), so that
// X-Forwarded-For sets Caddy's client IP, with a client quota of 1/h and
// the given client_ipv6_prefix (0: unset).
func ipv6QuotaConfig(t *testing.T, v6Prefix int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin localhost:2999
	auto_https off
	servers {
		trusted_proxies static 127.0.0.1/32
		client_ip_headers X-Forwarded-For
	}
	passerelle {
		mode sandbox
		franceconnect {
			issuer http://127.0.0.1:%d/api/v2
			client_id %s
			client_secret {env.PASSERELLE_TEST_FC_SECRET}
		}
		habilitations %s 1s
		rate_limit {
			habilitation 1000000/s
			client_ip 1/h
`, ipv6IssuerPort, fdClientID, writeHabilitations(t))
	if v6Prefix != 0 {
		fmt.Fprintf(&b, "\t\t\tclient_ipv6_prefix %d\n", v6Prefix)
	}
	b.WriteString("\t\t}\n\t\tcache {\n\t\t\tmax_entries 14140\n\t\t}\n")
	for _, name := range append([]string{"CNAV"}, otherProviders(t)...) {
		fmt.Fprintf(&b, "\t\tupstream %q {\n\t\t\theader Authorization {env.PASSERELLE_TEST_PROVIDER_KEY}\n\t\t}\n", name)
	}
	fmt.Fprintf(&b, `	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	handle {
		passerelle
		respond 502
	}
}
`, ipv6GatewayPort)
	return b.String()
}

// freshGroup returns a random 16-bit group: each run of a test uses
// networks of its own, since the gateway's limiters outlive a config load.
func freshGroup() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return uint16(b[0])<<8 | uint16(b[1])
}

// fromClient sends a request without token on behalf of the client addr: the
// client quota is taken before the token is looked at, so an allowed
// request answers 401 50004 and a limited one 429 00429; FranceConnect is
// never asked.
func fromClient(t *testing.T, addr string) answer {
	t.Helper()
	return get(t, ipv6GatewayPort, qf("recipient="+siret), "X-Forwarded-For", addr)
}

// wantLimited checks that the answers are one 401 50004 and then only
// 429 00429 with Retry-After.
func wantLimited(t *testing.T, addrs []string) {
	t.Helper()
	for i, addr := range addrs {
		a := fromClient(t, addr)
		switch {
		case i == 0 && (a.status != 401 || a.code(t) != "50004"):
			t.Fatalf("first request, from %s: status %d, want 401 50004: %s", addr, a.status, a.body)
		case i > 0 && (a.status != 429 || a.code(t) != "00429" || a.header.Get("Retry-After") == ""):
			t.Fatalf("request %d, from %s of the same network: status %d, Retry-After %q, want 429 00429: %s",
				i+1, addr, a.status, a.header.Get("Retry-After"), a.body)
		}
	}
}

// TestF04_ClientQuotaPerIPv6Network: the review's attack through the real
// Caddy runtime. Twenty addresses of one /64 against client_ip 1/h: the
// first is let through (401: no token), the other nineteen get 429 00429;
// an address of another /64, and another IPv4 address, keep their own
// quota, while IPv4 addresses count one by one.
func TestF04_ClientQuotaPerIPv6Network(t *testing.T) {
	setEnv(t)
	caddytest.NewTester(t).InitServer(ipv6QuotaConfig(t, 0), "caddyfile")
	g := freshGroup()

	var addrs []string
	for i := range 20 {
		addrs = append(addrs, fmt.Sprintf("2001:db8:%x:64:%x:%x:%x:%x", g, i*4099%0x10000, i+1, i*7, 0xffff-i))
	}
	wantLimited(t, addrs)

	if a := fromClient(t, fmt.Sprintf("2001:db8:%x:65::1", g)); a.status != 401 {
		t.Fatalf("an address of another /64: status %d, want 401: %s", a.status, a.body)
	}
	v4 := fmt.Sprintf("198.51.%d.%d", g>>8, g&0xff)
	wantLimited(t, []string{v4, v4, "::ffff:" + v4}) // mapped IPv4 is the same client
	if a := fromClient(t, fmt.Sprintf("198.51.%d.%d", g>>8, (g+1)&0xff)); a.status != 401 {
		t.Fatalf("the next IPv4 address: status %d, want 401: %s", a.status, a.body)
	}
}

// TestF04_ClientQuotaIPv6PrefixConfigured: with client_ipv6_prefix 48, the
// /64s of one /48 share a quota; another /48 has its own.
func TestF04_ClientQuotaIPv6PrefixConfigured(t *testing.T) {
	setEnv(t)
	caddytest.NewTester(t).InitServer(ipv6QuotaConfig(t, 48), "caddyfile")
	g := freshGroup()
	var addrs []string
	for i := range 20 {
		addrs = append(addrs, fmt.Sprintf("2001:db8:%x:%x::%x", g, i*3001%0x10000, i+1))
	}
	wantLimited(t, addrs)
	if a := fromClient(t, fmt.Sprintf("2001:db9:%x:1::1", g)); a.status != 401 {
		t.Fatalf("an address of another /48: status %d, want 401: %s", a.status, a.body)
	}
}
