package integration

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

const secondGatewayPort = 18090

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/passerelle once per test run (the build cache makes it
// a link step after the test binary's own compilation).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "passerelle-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "passerelle")
		cmd := exec.Command("go", "build", "-tags", "nobadger,nomysql,nopgx", "-o", binPath, "./cmd/passerelle")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startBinary runs the built binary with args from dir ("" for the test's
// own), its output in a log file whose path it returns, and stops it when
// the test ends.
func startBinary(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	logFile, err := os.Create(filepath.Join(t.TempDir(), "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	return logFile.Name()
}

// writeKey writes a throwaway decryption key both gateways share, as the
// instances of one deployment do.
func writeKey(t *testing.T) string {
	t.Helper()
	k, err := fcverify.GenerateKey("ECDH-ES")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(k)
	path := filepath.Join(t.TempDir(), "enc.jwk")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSecondGateway runs the built binary as another instance: same
// FranceConnect client, key, cache secret, Redis, credentials and
// habilitations; its own listener in front of the same provider. It
// returns the path of the instance's log.
func startSecondGateway(t *testing.T, o options) string {
	t.Helper()
	bin := binary(t)
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	passerelle {
		mode sandbox
		franceconnect {
			issuer http://127.0.0.1:%d/api/v2
			client_id %s
			client_secret {env.PASSERELLE_TEST_FC_SECRET}
			decryption_key {file.%s}
			checktoken_url %s/api/v2/checktoken
			jwks_url %s/api/v2/jwks
		}
		habilitations %s 1s
		rate_limit {
			habilitation %s
			client_ip 1000000/s
			citizen %s
		}
		cache {
			max_entries %d
			secret {env.PASSERELLE_TEST_CACHE_SECRET}
			redis {
				addrs %s
			}
		}
		upstream CNAV {
			oauth2 {
				token_url %s/token
				client_id passerelle
				client_secret {env.PASSERELLE_TEST_PROVIDER_KEY}
				scopes cnav.read
			}
		}
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	passerelle
	reverse_proxy %s
}
`, sandboxPort, fdClientID, o.DecryptionKey, o.CheckTokenURL, o.CheckTokenURL, o.Habilitations, cmp.Or(o.HabQuota, "1000000/s"),
		cmp.Or(o.CitizenQuota, "1000000/s"), o.MaxEntries, o.Redis, o.OAuth2URL, secondGatewayPort, o.Recorder)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := startBinary(t, bin, "", "run", "--config", path, "--adapter", "caddyfile")
	waitListening(t, secondGatewayPort, logPath, "second gateway")
	return logPath
}

// waitListening waits up to 10 s for a gateway started by startBinary to
// accept connections on port; it fails the test with the gateway's log.
func waitListening(t *testing.T, port int, logPath, what string) {
	t.Helper()
	for range 100 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("%s on %d did not start: %s", what, port, log)
}

// cluster is two gateways (the in-process Caddy and the built binary) on
// one real redis-server, with their stand-ins: FranceConnect, the OAuth2
// token endpoint and the recording provider.
type cluster struct {
	redis   string
	fc      *fcCounter
	te      *tokenEndpoint
	rec     *recorder
	logPath string // the second instance's log
}

// startCluster starts a cluster; o sets the cache size and the quotas, the
// rest is the cluster's.
func startCluster(t *testing.T, o options) cluster {
	t.Helper()
	c := cluster{redis: redistest.Start(t).Addr, fc: newFCCounter(t), te: newTokenEndpoint(t), rec: newRecorder(t)}
	o.Redis, o.CheckTokenURL, o.Recorder, o.OAuth2URL = c.redis, c.fc.srv.URL, c.rec.srv.URL, c.te.srv.URL
	o.DecryptionKey, o.Habilitations = writeKey(t), writeHabilitations(t)
	start(t, o)
	c.logPath = startSecondGateway(t, o)
	return c
}

// TestB08_TwoInstancesOneRedis: two gateways (the in-process Caddy and the
// built binary) on one real redis-server make, for 100 concurrent requests
// with one new token split across both, exactly one checktoken call and one
// upstream token fetch, and enforce one habilitation quota across both.
func TestB08_TwoInstancesOneRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a second gateway process")
	}
	c := startCluster(t, options{MaxEntries: 8001})
	fc, te := c.fc, c.te

	concurrentGets(t, 100, "all_fc", recordPort, secondGatewayPort)
	if n := fc.checktoken.Load(); n != 1 {
		t.Errorf("%d checktoken calls for the cluster, want exactly 1", n)
	}
	if n := te.calls.Load(); n != 1 {
		t.Errorf("%d upstream token fetches for the cluster, want exactly 1", n)
	}
}

// TestF03_QuotaAcrossInstances: a habilitation quota of N per minute holds
// across two gateways within 10%.
func TestF03_QuotaAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a second gateway process")
	}
	const quota = 40
	startCluster(t, options{MaxEntries: 8002, HabQuota: fmt.Sprintf("%d/m", quota)})
	allowed := 0
	for i := 0; i < 2*quota; i++ {
		port := []int{recordPort, secondGatewayPort}[i%2]
		switch a := get(t, port, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	}
	if allowed < quota*9/10 || allowed > quota*11/10 {
		t.Fatalf("%d requests allowed across two instances, want %d ± 10%%", allowed, quota)
	}
}

// TestF05_CitizenQuotaAcrossInstances: one citizen's quota within a
// habilitation holds across two gateways on one Redis; the refusal is 429
// without a provider call, names its quota in the RateLimit headers, and
// raises a security alert that names no citizen; another citizen of the
// same habilitation is served; the Redis keys hold no pseudonym.
func TestF05_CitizenQuotaAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a second gateway process")
	}
	c := startCluster(t, options{MaxEntries: 8003, CitizenQuota: "3/h"})
	rec, logPath := c.rec, c.logPath
	ports := []int{recordPort, secondGatewayPort}
	for i := range 3 {
		a := get(t, ports[i%2], qf("recipient="+siret), bearer("cnaf_qfv2")...)
		if a.status != 200 || a.header.Get("RateLimit-Limit") == "3" {
			t.Fatalf("request %d: status %d, RateLimit-Limit %q (the habilitation's, not the citizen's)", i, a.status, a.header.Get("RateLimit-Limit"))
		}
	}
	called := rec.count()
	a := get(t, secondGatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if a.status != 429 || a.code(t) != "00429" || a.header.Get("Retry-After") == "" || a.header.Get("RateLimit-Limit") != "3" {
		t.Fatalf("4th request of one citizen: status %d code %s headers %v", a.status, a.code(t), a.header)
	}
	if a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 429 {
		t.Fatalf("5th request, other instance: status %d", a.status)
	}
	if n := rec.count(); n != called {
		t.Fatalf("the refused requests reached the provider (%d calls)", n-called)
	}
	if a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qf_partial")...); a.status != 200 {
		t.Fatalf("another citizen of the habilitation: status %d", a.status)
	}

	rdb := redis.NewClient(&redis.Options{Addr: c.redis})
	t.Cleanup(func() { _ = rdb.Close() })
	keys, err := rdb.Keys(context.Background(), "rate:"+ratelimit.KeyPrefix+ratelimit.CitizenKind+":*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("citizen keys in Redis: %v, %v; want 2", keys, err)
	}
	for _, k := range keys {
		if leak := contains([]byte(k), "hab", "d2a4e19edbff", "Georges", "cz1"); leak != "" {
			t.Errorf("Redis key %q holds %q", k, leak)
		}
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte(`"alert":"citizen_quota"`)) {
			if leak := contains(log, "Georges", "2002-01-01", "d2a4e19edbff", "cnaf_qfv2"); leak != "" {
				t.Fatalf("the gateway's log holds %q", leak)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no citizen_quota alert in the second gateway's log:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestH03_ReleaseBuildHasNoSandbox: a binary built with the nosandbox tag
// holds the gateway's modules and none of the sandbox stand-ins.
func TestH03_ReleaseBuildHasNoSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "passerelle")
	build := exec.Command("go", "build", "-tags", "nobadger,nomysql,nopgx,nosandbox", "-o", bin, "./cmd/passerelle")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	out, err := exec.Command(bin, "list-modules").Output()
	if err != nil {
		t.Fatal(err)
	}
	mods := string(out)
	for _, want := range []string{"http.handlers.passerelle\n", "http.handlers.passerelle_jwks\n", "http.handlers.passerelle_health\n"} {
		if !strings.Contains(mods, want) {
			t.Errorf("release build lacks %s", strings.TrimSpace(want))
		}
	}
	if strings.Contains(mods, "sandbox") {
		t.Errorf("release build holds sandbox modules:\n%s", mods)
	}
}
