package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// rotationLoad sends data requests with new FranceConnect tokens (one
// checktoken each) from a few goroutines until stop is called, which
// returns the answers and the first failure.
func rotationLoad(t *testing.T, prefix string) (stop func() (ok, failed int64, first string)) {
	var okN, failedN, seq atomic.Int64
	var firstFailure atomic.Pointer[string]
	stopLoop := runUntil(t, 4, func(g int) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", recordPort, qf("recipient="+siret)), nil)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer matrix-%s-%d-%d", prefix, g, seq.Add(1)))
		resp, err := timeoutClient.Do(req)
		if err != nil {
			// A kept-alive connection the reload closed under the request
			// (Caddy's listener handover, as the load harness's reload
			// check counts): a client retries an idempotent GET once. Keys
			// play no part in that.
			resp, err = timeoutClient.Do(req)
		}
		if err == nil && resp.StatusCode == http.StatusOK {
			okN.Add(1)
		} else {
			failedN.Add(1)
			what := fmt.Sprint(err)
			if resp != nil {
				what = resp.Status
			}
			firstFailure.CompareAndSwap(nil, &what)
		}
		if resp != nil {
			_ = resp.Body.Close()
		}
	})
	return func() (int64, int64, string) {
		stopLoop()
		first := ""
		if f := firstFailure.Load(); f != nil {
			first = *f
		}
		return okN.Load(), failedN.Load(), first
	}
}

// kidOf reads the key id of a JWK file.
func kidOf(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(data, &k); err != nil || k.Kid == "" {
		t.Fatalf("no kid in %s: %v", path, err)
	}
	return k.Kid
}

// publishedKids lists the kids of the gateway's public JWKS, in order.
func publishedKids(t *testing.T) []string {
	t.Helper()
	a := get(t, gatewayPort, "/.well-known/passerelle/jwks.json")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(a.body, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// TestH06_KeyRotationUnderLoad (SECURITY.md H06): the gateway's decryption
// key is rotated by three configuration reloads under a load of new tokens
// (one checktoken each, FranceConnect encrypting its answers to the key it
// took from the gateway's JWKS): A, then A and B, then B published first
// while FranceConnect still encrypts to A (its cache) and then to B, then B
// alone. No request fails. A token verified under A is still served once A
// is gone (checked again: the in-process cache goes with the configuration
// of its keys); an answer still encrypted to the removed key A is refused.
func TestH06_KeyRotationUnderLoad(t *testing.T) {
	keyA, keyB := writeKey(t), writeKey(t)
	kidA, kidB := kidOf(t, keyA), kidOf(t, keyB)
	fc := newFaultFC(t, keyA)
	rec := newRecorder(t)
	opts := func(keys string) options {
		return options{MaxEntries: 2701, CheckTokenURL: fc.srv.URL, Recorder: rec.srv.URL, DecryptionKey: keys}
	}
	start(t, opts(keyA))
	cached := get(t, recordPort, qf("recipient="+siret), bearer("matrix-h06-cached")...)
	if cached.status != 200 {
		t.Fatalf("under A: %d %s", cached.status, cached.body)
	}
	stop := rotationLoad(t, "h06")
	pause := func() { time.Sleep(400 * time.Millisecond) }
	pause()
	start(t, opts(keyA+","+keyB)) // B added, A still published first
	if kids := publishedKids(t); len(kids) != 2 || kids[0] != kidA || kids[1] != kidB {
		t.Errorf("JWKS during the overlap: %v, want [A B]", kids)
	}
	pause()
	start(t, opts(keyB+","+keyA)) // B published first; FranceConnect still holds A
	pause()
	data, _ := os.ReadFile(keyB)
	fc.encryptTo(t, data) // FranceConnect fetched the JWKS again
	pause()
	start(t, opts(keyB)) // A retired
	if kids := publishedKids(t); len(kids) != 1 || kids[0] != kidB {
		t.Errorf("JWKS after the rotation: %v, want [B]", kids)
	}
	pause()
	ok, failed, first := stop()
	t.Logf("%d requests served across the rotation, %d failed", ok, failed)
	if failed > 0 || ok < 20 {
		t.Fatalf("%d of %d requests failed during the rotation (first: %s)", failed, ok+failed, first)
	}

	if a := get(t, recordPort, qf("recipient="+siret), bearer("matrix-h06-cached")...); a.status != 200 {
		t.Errorf("the token verified under A, once A is gone: %d", a.status)
	}
	data, _ = os.ReadFile(keyA)
	fc.encryptTo(t, data) // a FranceConnect still on the retired key
	if a := get(t, recordPort, qf("recipient="+siret), bearer("matrix-h06-stale")...); a.status == 200 {
		t.Error("an answer encrypted to the retired key was accepted")
	}
}
