package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
	"github.com/passerelle-gw/passerelle/config/datapass"
)

// Ports of the two DataPass gateways and of the stand-ins the first one
// serves (FranceConnect, providers).
const (
	dpPortA, dpPortB, dpSandboxPort = 18180, 18181, 18182
	dpRequestID                     = "48213"
	dpSecret                        = "datapass-secret-canary-5d1e9f0a7b3c"
	dpPreviousSecret                = "datapass-previous-canary-77aa01"
	dpApplicantCanary               = "applicant.canary@mairie.example"
)

// dpGateway writes the configuration of one DataPass gateway: the sandbox
// habilitation bound to DataPass request 48213, Redis, the webhook route;
// the first gateway also serves the FranceConnect and provider stand-ins.
func dpGateway(t *testing.T, port int, redisAddr, key, habs string, standIns bool) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin off
	auto_https off
	passerelle {
		mode sandbox
		franceconnect {
			issuer http://127.0.0.1:%[1]d/api/v2
			client_id %[2]s
			client_secret {env.PASSERELLE_TEST_FC_SECRET}
			decryption_key {file.%[3]s}
		}
		habilitations %[4]s 1s
		rate_limit {
			habilitation 1000000/s
			client_ip 1000000/s
		}
		cache {
			secret {env.PASSERELLE_TEST_CACHE_SECRET}
			redis {
				addrs %[5]s
			}
		}
		datapass {
			secret {env.PASSERELLE_TEST_DATAPASS_SECRET}
			previous_secret {env.PASSERELLE_TEST_DATAPASS_PREVIOUS}
			environment production
		}
`, dpSandboxPort, fdClientID, key, habs, redisAddr)
	for _, name := range append(otherProviders(t), "CNAV") {
		fmt.Fprintf(&b, "\t\tupstream %q {\n\t\t\theader Authorization {env.PASSERELLE_TEST_PROVIDER_KEY}\n\t\t}\n", name)
	}
	fmt.Fprintf(&b, `	}
}

http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	handle /datapass/webhook {
		passerelle_datapass
	}
	handle /.well-known/passerelle/jwks.json {
		passerelle_jwks
	}
	handle {
		passerelle
		reverse_proxy 127.0.0.1:%[2]d
	}
}
`, port, dpSandboxPort)
	if standIns {
		fmt.Fprintf(&b, `
http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	passerelle_sandbox_fc {
		issuer http://127.0.0.1:%[1]d/api/v2
		gateway_jwks http://127.0.0.1:%[2]d/.well-known/passerelle/jwks.json
	}
	passerelle_sandbox_provider {
		require_authorization {env.PASSERELLE_TEST_PROVIDER_KEY}
	}
	respond 404
}
`, dpSandboxPort, port)
	}
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDPGateway runs the built binary on a configuration and waits for
// its port; it returns its log file.
func startDPGateway(t *testing.T, port int, cfg string) string {
	t.Helper()
	logPath := startBinary(t, binary(t), "", "run", "--config", cfg, "--adapter", "caddyfile")
	waitListening(t, port, logPath, "gateway")
	return logPath
}

// dpHabilitations is a copy of the sandbox habilitations file, whose
// habilitation is bound to DataPass request 48213.
func dpHabilitations(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/sandbox/habilitations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `datapass_id: "`+dpRequestID+`"`) {
		t.Fatal("the sandbox habilitation is not bound to DataPass request " + dpRequestID)
	}
	path := filepath.Join(t.TempDir(), "habilitations.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dpPayload is a webhook body for request 48213 of the sandbox
// organisation, in DataPass's shape, with personal canaries.
func dpPayload(t *testing.T, event string, firedAt int64, active bool, scopes ...string) []byte {
	t.Helper()
	state := "active"
	if !active {
		state = "revoked"
	}
	b, err := json.Marshal(map[string]any{
		"event": event, "fired_at": firedAt, "model_type": datapass.ModelType, "model_id": 48213,
		"data": map[string]any{
			"id": 48213, "state": "validated", "organization": map[string]any{"siret": siret, "name": "COMMUNE CANARY"},
			"applicant": map[string]any{"email": dpApplicantCanary, "family_name": "Canaryfamily"},
			"data":      map[string]any{"contact_technique_email": dpApplicantCanary},
			"authorizations": []map[string]any{{"id": 90117, "state": state, "revoked": !active, "definition_id": "api_particulier",
				"data": map[string]any{"scopes": scopes, "modalities": []string{"france_connect"}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliverWebhook posts a body with a signature header (none when sig is
// empty) and returns the answer.
func deliverWebhook(t *testing.T, port int, body []byte, sig string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/datapass/webhook", port), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-App-Environment", "production")
	if sig != "" {
		req.Header.Set(datapass.SignatureHeader, sig)
	}
	return do(t, req)
}

func signed(body []byte) string { return datapass.Sign([]byte(dpSecret), body) }

// qfStatus is the status of a quotient familial call on a gateway with a
// sandbox FranceConnect token (cached after the first call).
func qfStatus(t *testing.T, port int) int {
	return get(t, port, qf("recipient="+siret), bearer("cnaf_qfv2")...).status
}

// waitStatus polls a gateway until it answers want, and returns how long
// that took; it fails the test after limit.
func waitStatus(t *testing.T, port, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if qfStatus(t, port) == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("gateway %d: no %d within %s", port, want, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

func setDataPassEnv(t *testing.T) {
	setEnv(t)
	t.Setenv("PASSERELLE_TEST_DATAPASS_SECRET", dpSecret)
	t.Setenv("PASSERELLE_TEST_DATAPASS_PREVIOUS", dpPreviousSecret)
}

// TestDataPassTwoInstances: a revocation delivered to one gateway is
// applied by the other within a second (p99 over 100 revocations, logged);
// the signature and order rules hold over HTTP; a lost subscription and a
// Redis restart are recovered by a full reload; the bodies' personal data
// reaches no log.
// req: C11, C12, C13
func TestDataPassTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two gateway processes")
	}
	setDataPassEnv(t)
	srv := redistest.Start(t)
	key, habs := writeKey(t), dpHabilitations(t)
	logA := startDPGateway(t, dpPortA, dpGateway(t, dpPortA, srv.Addr, key, habs, true))
	logB := startDPGateway(t, dpPortB, dpGateway(t, dpPortB, srv.Addr, key, habs, false))
	for _, p := range []int{dpPortA, dpPortB} {
		waitStatus(t, p, 200, 10*time.Second) // the file governs until DataPass speaks
	}

	// Signatures: every forgery is refused with nothing echoed, and
	// changes nothing.
	t0 := time.Now().Unix()
	revoke := dpPayload(t, "revoke", t0, false, "cnaf_quotient_familial")
	for name, a := range map[string]answer{
		"none":           deliverWebhook(t, dpPortA, revoke, ""),
		"wrong secret":   deliverWebhook(t, dpPortA, revoke, datapass.Sign([]byte("not-the-secret"), revoke)),
		"altered body":   deliverWebhook(t, dpPortA, append([]byte(" "), revoke...), signed(revoke)),
		"header in caps": deliverWebhook(t, dpPortA, revoke, strings.ToUpper(signed(revoke))),
	} {
		if a.status != http.StatusUnauthorized || contains(a.body, "revoke", "48213", dpApplicantCanary) != "" {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
	}
	if qfStatus(t, dpPortB) != 200 {
		t.Fatal("a refused webhook changed the habilitation")
	}

	// A revocation signed with the previous secret (rotation), delivered
	// to A: B refuses within a second.
	if a := deliverWebhook(t, dpPortA, revoke, datapass.Sign([]byte(dpPreviousSecret), revoke)); a.status != http.StatusNoContent || len(a.body) != 0 {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if got := get(t, dpPortA, qf("recipient="+siret), bearer("cnaf_qfv2")...); got.status != 403 || got.code(t) != "00100" {
		t.Fatalf("A after the revoke: %d %s", got.status, got.body)
	}
	waitStatus(t, dpPortB, 403, time.Second)
	// DataPass re-sends the same body: a no-op; an older approve: stale.
	if a := deliverWebhook(t, dpPortB, revoke, signed(revoke)); a.status != http.StatusNoContent {
		t.Fatalf("duplicate: %d", a.status)
	}
	old := dpPayload(t, "approve", t0-3600, true, "cnaf_quotient_familial")
	if a := deliverWebhook(t, dpPortB, old, signed(old)); a.status != http.StatusNoContent {
		t.Fatalf("old approve: %d", a.status)
	}
	time.Sleep(200 * time.Millisecond)
	if qfStatus(t, dpPortA) != 403 || qfStatus(t, dpPortB) != 403 {
		t.Fatal("a replayed old approve undid the revoke")
	}

	// 100 revocations, each after a new approval, alternating the
	// receiving gateway: how long until the other one refuses.
	var lat []time.Duration
	at := t0
	for i := range 100 {
		recv, other := dpPortA, dpPortB
		if i%2 == 1 {
			recv, other = other, recv
		}
		at += 2
		approve := dpPayload(t, "approve", at, true, "cnaf_quotient_familial", "cnaf_allocataires")
		if a := deliverWebhook(t, recv, approve, signed(approve)); a.status != http.StatusNoContent {
			t.Fatalf("approve %d: %d %s", i, a.status, a.body)
		}
		waitStatus(t, other, 200, time.Second)
		rv := dpPayload(t, "revoke", at+1, false, "cnaf_quotient_familial")
		if a := deliverWebhook(t, recv, rv, signed(rv)); a.status != http.StatusNoContent {
			t.Fatalf("revoke %d: %d %s", i, a.status, a.body)
		}
		lat = append(lat, waitStatus(t, other, 403, time.Second))
	}
	slices.Sort(lat)
	t.Logf("revocation applied by the other instance: p50 %s, p99 %s, max %s over %d revocations",
		lat[len(lat)/2], lat[len(lat)*99/100-1], lat[len(lat)-1], len(lat))

	// B's subscription is cut and A applies an approval at once: B learns
	// it when it subscribes again (publish/subscribe lost the message).
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	at += 2
	approve := dpPayload(t, "approve", at, true, "cnaf_quotient_familial")
	if err := rdb.Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if a := deliverWebhook(t, dpPortA, approve, signed(approve)); a.status != http.StatusNoContent {
		t.Fatalf("approve: %d", a.status)
	}
	waitStatus(t, dpPortB, 200, 5*time.Second)

	// Redis killed and back, empty: the records the gateways hold are
	// written back; a revocation delivered to A right after reaches B.
	srv.Restart(t)
	at += 2
	rv := dpPayload(t, "revoke", at, false, "cnaf_quotient_familial")
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := deliverWebhook(t, dpPortA, rv, signed(rv))
		if a.status == http.StatusNoContent {
			break
		}
		if a.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("revoke after the restart: %d %s", a.status, a.body)
		}
		time.Sleep(100 * time.Millisecond) // DataPass delivers again after a 503
	}
	waitStatus(t, dpPortB, 403, 5*time.Second)
	if n, err := rdb.HLen(t.Context(), datapass.RecordsKey).Result(); err != nil || n != 1 {
		t.Fatalf("records in Redis after the restart: %d %v", n, err)
	}

	// Nothing of the bodies' personal data in either gateway's logs,
	// whose audit records do name the deliveries.
	for _, p := range []string{logA, logB} {
		data, _ := os.ReadFile(p)
		if c := contains(data, dpApplicantCanary, "Canaryfamily", "COMMUNE CANARY", dpSecret, dpPreviousSecret); c != "" {
			t.Errorf("%s holds %q", filepath.Base(p), c)
		}
		if !bytes.Contains(data, []byte(`"event":"datapass_webhook"`)) || !bytes.Contains(data, []byte(`"body_sha256"`)) {
			t.Errorf("%s: no datapass_webhook audit record", p)
		}
	}
}

// TestDataPassReloadKeepsLocalRevocation: Redis is down when a revocation
// arrives (503, applied by the gateway at once), the gateway's
// configuration is reloaded during the outage, and Redis comes back empty:
// the reloaded gateway still holds the revocation, writes it back to Redis
// and keeps refusing (the store of the new configuration adopted the
// record the replaced one applied alone).
// req: C13
func TestDataPassReloadKeepsLocalRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a gateway process")
	}
	setDataPassEnv(t)
	srv := redistest.Start(t)
	const admin = "127.0.0.1:18183"
	cfg := dpGateway(t, dpPortA, srv.Addr, writeKey(t), dpHabilitations(t), true)
	cfgText, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, bytes.Replace(cfgText, []byte("admin off"), []byte("admin "+admin), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	logA := startDPGateway(t, dpPortA, cfg)
	waitStatus(t, dpPortA, 200, 10*time.Second)

	t0 := time.Now().Unix()
	approve := dpPayload(t, "approve", t0, true, "cnaf_quotient_familial")
	if a := deliverWebhook(t, dpPortA, approve, signed(approve)); a.status != http.StatusNoContent {
		t.Fatalf("approve: %d %s", a.status, a.body)
	}
	srv.Kill()
	revoke := dpPayload(t, "revoke", t0+1, false, "cnaf_quotient_familial")
	if a := deliverWebhook(t, dpPortA, revoke, signed(revoke)); a.status != http.StatusServiceUnavailable {
		t.Fatalf("revoke with Redis down: %d %s (want 503: DataPass delivers again)", a.status, a.body)
	}
	waitStatus(t, dpPortA, 403, time.Second)

	reload := exec.Command(binary(t), "reload", "--config", cfg, "--adapter", "caddyfile", "--address", admin, "--force")
	if out, err := reload.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(logA)
		t.Fatalf("reload during the outage: %v\n%s\n%s", err, out, log)
	}
	if got := qfStatus(t, dpPortA); got != 403 {
		t.Fatalf("after the reload, Redis down: %d, want 403", got)
	}

	srv.Restart(t) // empty: it kept nothing of the approve either
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, err := rdb.HGet(t.Context(), datapass.RecordsKey, dpRequestID).Bytes()
		var r datapass.Record
		// A sealed record: "v1." + MAC + "." + JSON (config/datapass/seal.go).
		_, body, sealed := bytes.Cut(bytes.TrimPrefix(raw, []byte("v1.")), []byte("."))
		if err == nil && sealed && json.Unmarshal(body, &r) == nil {
			if r.Active {
				t.Fatalf("Redis holds an active record after the write-back: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revocation was not written back to Redis within 10 s (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // past the reload that followed the resubscription
	if got := qfStatus(t, dpPortA); got != 403 {
		t.Fatalf("after Redis came back: %d, want 403 (the revocation was lost with the replaced configuration)", got)
	}
}
