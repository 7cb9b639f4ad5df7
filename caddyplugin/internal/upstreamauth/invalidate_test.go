package upstreamauth

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

// cluster is instances of one provider's Source sharing a real redis-server
// under one seal secret.
type cluster struct {
	rdb  *redis.Client
	seal []byte
	e    *tokenEndpoint
	// ahead moves the instances' clock forward (in steps of more than
	// InvalidateCooldown), on top of the real time.
	ahead atomic.Int64
}

func newCluster(t *testing.T, e *tokenEndpoint) *cluster {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	// A fresh seal secret: the shared key is new, whatever earlier runs left.
	return &cluster{rdb: rdb, seal: sealSecret(), e: e}
}

func (c *cluster) instance(t *testing.T) Source {
	return newSource(t, c.e, func(cfg *OAuth2Config) {
		cfg.Redis, cfg.SealSecret = c.rdb, c.seal
		cfg.RedisTimeout, cfg.Timeout = time.Second, 5*time.Second // -race on a busy machine
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }
	})
}

// afterCooldown moves the instances' clock past InvalidateCooldown.
func (c *cluster) afterCooldown() { c.ahead.Add(int64(2 * InvalidateCooldown)) }

// TestB11_RefusedAgainNoTokenStorm: a provider that refuses every token (or
// whose 401 a caller's input provokes) gets one refresh, then the 401s are
// answered without a retry until InvalidateCooldown has passed: requests do
// not turn into token requests.
func TestB11_RefusedAgainNoTokenStorm(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newCluster(t, e)
	s := c.instance(t)
	retries := 0
	for range 50 {
		h := sent(apply(t, s))
		if s.Invalidate(context.Background(), h) {
			retries++
		}
	}
	if retries != 1 || e.calls.Load() != 2 {
		t.Fatalf("50 refused calls: %d retries, %d token requests; want 1 and 2", retries, e.calls.Load())
	}
	c.afterCooldown()
	if !s.Invalidate(context.Background(), sent(apply(t, s))) || apply(t, s) != bearer(3) {
		t.Fatal("no refresh once the cooldown passed")
	}
	var st staticHeader
	if st.Invalidate(context.Background(), sent(bearer(1))) {
		t.Fatal("a static credential asks for a retry")
	}
}

// sharedHeader opens the token held in Redis; "" when there is none.
func (c *cluster) sharedHeader(t *testing.T) string {
	t.Helper()
	st := newSharedStore(c.rdb, c.seal, sharedIdentity(testConfig(c.e)), time.Second)
	tok, err := st.get(context.Background())
	if err != nil {
		t.Fatalf("reading the shared token: %v", err)
	}
	if tok == nil {
		return ""
	}
	return tok.header
}

// req: B11, I09
// TestB11_LateUnauthorizedKeepsTheFreshToken: the review's attack. A holds
// T1; B is refused T1 and shares T2; then A reports a late 401 for T1.
// T2 stays in Redis and in B, and A takes T2 from Redis without a token
// request. A second late 401 for T1, once A uses T2, changes nothing.
func TestB11_LateUnauthorizedKeepsTheFreshToken(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newCluster(t, e)
	a, b := c.instance(t), c.instance(t)
	if apply(t, a) != bearer(1) || apply(t, b) != bearer(1) || e.calls.Load() != 1 {
		t.Fatalf("first token: %d requests", e.calls.Load())
	}

	b.Invalidate(context.Background(), sent(bearer(1))) // B's provider call got a 401
	if apply(t, b) != bearer(2) || e.calls.Load() != 2 || c.sharedHeader(t) != bearer(2) {
		t.Fatalf("B did not share T2: %d requests, Redis holds %q", e.calls.Load(), c.sharedHeader(t))
	}
	if apply(t, a) != bearer(1) {
		t.Fatal("A does not hold T1 any more")
	}

	a.Invalidate(context.Background(), sent(bearer(1))) // late 401 for T1 on A
	if got := c.sharedHeader(t); got != bearer(2) {
		t.Fatalf("a late 401 for T1 removed T2 from Redis (now %q)", got)
	}
	if got := apply(t, b); got != bearer(2) {
		t.Fatalf("B now sends %q, want T2", got)
	}
	if got := apply(t, a); got != bearer(2) || e.calls.Load() != 2 {
		t.Fatalf("A now sends %q after %d token requests, want T2 from Redis and 2", got, e.calls.Load())
	}

	for _, s := range []Source{a, b} { // T1 again, now current nowhere
		s.Invalidate(context.Background(), sent(bearer(1)))
	}
	if apply(t, a) != bearer(2) || apply(t, b) != bearer(2) || c.sharedHeader(t) != bearer(2) || e.calls.Load() != 2 {
		t.Fatalf("a 401 for a token current nowhere changed something: %d requests, Redis %q", e.calls.Load(), c.sharedHeader(t))
	}
}

// req: B11, I09
// TestB11_UnauthorizedForTheCurrentTokenInvalidates: a 401 for the token in
// use drops it here and in Redis: one new token request, shared. B, still
// holding the refused token, moves to the new one on its own 401 without a
// token request.
func TestB11_UnauthorizedForTheCurrentTokenInvalidates(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newCluster(t, e)
	a, b := c.instance(t), c.instance(t)
	apply(t, a)
	apply(t, b)
	a.Invalidate(context.Background(), sent(bearer(1)))
	if got := c.sharedHeader(t); got != "" {
		t.Fatalf("Redis still holds %q after a 401 for it", got)
	}
	if apply(t, a) != bearer(2) || e.calls.Load() != 2 || c.sharedHeader(t) != bearer(2) {
		t.Fatalf("want one new token request, shared: %d requests, Redis %q", e.calls.Load(), c.sharedHeader(t))
	}
	b.Invalidate(context.Background(), sent(bearer(1)))
	if apply(t, b) != bearer(2) || e.calls.Load() != 2 {
		t.Fatalf("B did not take T2 from Redis: %d requests", e.calls.Load())
	}
}

// req: B11
// TestB11_InvalidateWithoutRedisComparesTheToken: in process too, only the
// token that was sent is dropped; a header without Authorization (not a
// request of this source) changes nothing.
func TestB11_InvalidateWithoutRedisComparesTheToken(t *testing.T) {
	e := newTokenEndpoint(t)
	s := newSource(t, e)
	if apply(t, s) != bearer(1) {
		t.Fatal("first token")
	}
	for _, h := range []http.Header{sent(bearer(0)), sent("Bearer other"), {}, nil, {"X-Api-Key": {bearer(1)}}} {
		s.Invalidate(context.Background(), h)
		if apply(t, s) != bearer(1) || e.calls.Load() != 1 {
			t.Fatalf("Invalidate(%v) dropped the current token", h)
		}
	}
	s.Invalidate(context.Background(), sent(bearer(1)))
	if apply(t, s) != bearer(2) || e.calls.Load() != 2 {
		t.Fatal("a 401 for the current token did not refetch")
	}
}

// req: B11
// TestB11_RefusedTokenNotTakenBackFromRedis: should the refused token be
// in Redis again after Invalidate (a read that raced the delete, a delete
// that failed), the next refresh does not install it: it fetches.
func TestB11_RefusedTokenNotTakenBackFromRedis(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newCluster(t, e)
	a := c.instance(t)
	apply(t, a)
	a.Invalidate(context.Background(), sent(bearer(1)))
	st := newSharedStore(c.rdb, c.seal, sharedIdentity(testConfig(c.e)), time.Second)
	if err := st.set(context.Background(), &cachedToken{header: bearer(1), refreshAt: time.Now().Add(time.Minute)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := apply(t, a); got != bearer(2) || e.calls.Load() != 2 {
		t.Fatalf("after the refused token came back to Redis: %q, %d requests", got, e.calls.Load())
	}
	if c.sharedHeader(t) != bearer(2) {
		t.Fatal("the new token was not shared")
	}
}

// req: B11
// TestB11_WaiterCompetesForTheLockAgain: an instance waiting for another's
// fetch sees the lock released without a usable token (that fetch's token
// was refused at once and taken back). It takes the lock itself, so that
// the next instance to need a token waits for it: one token request, not
// one each.
func TestB11_WaiterCompetesForTheLockAgain(t *testing.T) {
	e := newTokenEndpoint(t)
	e.delay = 300 * time.Millisecond
	c := newCluster(t, e)
	a, b := c.instance(t), c.instance(t)
	lock := sharedKey(c.e, c.seal) + ":lock"
	ctx := context.Background()
	if err := c.rdb.Set(ctx, lock, "1", 10*time.Second).Err(); err != nil { // a third instance fetches
		t.Fatal(err)
	}
	gotA := make(chan string, 1)
	go func() {
		h := http.Header{}
		if err := a.Apply(ctx, h); err != nil {
			t.Error(err)
		}
		gotA <- h.Get("Authorization")
	}()
	time.Sleep(3 * lockPoll) // A waits
	// The third instance's token was refused at once: it shares nothing
	// and lets the lock go. A, at its next look, competes for it again.
	if err := c.rdb.Del(ctx, lock).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * lockPoll)
	if got := apply(t, b); got != bearer(1) {
		t.Fatalf("B sends %q, want A's token", got)
	}
	if got := <-gotA; got != bearer(1) || e.calls.Load() != 1 {
		t.Fatalf("A sends %q after %d token requests; want one request, shared", got, e.calls.Load())
	}
}

// req: B11, I09
// req: B11
// TestB11_UnsharedFetchesDoNotQueue: fetches that share nothing (here
// tokens too short-lived to share) do not make the instances take turns
// past their deadline: a waiter competes for the lock again only while
// half of its time is left, then asks the token endpoint itself. Four
// instances, a 400 ms token endpoint, 1.4 s each: competing every time
// would end the fourth's flight at 1.6 s.
func TestB11_UnsharedFetchesDoNotQueue(t *testing.T) {
	e := newTokenEndpoint(t)
	e.delay = 400 * time.Millisecond
	e.expiresIn.Store(3) // within MinMargin: used by its flight's callers only
	c := newCluster(t, e)
	errs := make(chan error, 4)
	for range 4 {
		s := newSource(t, e, func(cfg *OAuth2Config) {
			cfg.Redis, cfg.SealSecret = c.rdb, c.seal
			cfg.RedisTimeout, cfg.Timeout = time.Second, 1400*time.Millisecond
		})
		go func() { errs <- s.Apply(context.Background(), http.Header{}) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("an instance got no token: %v (%d token requests)", err, e.calls.Load())
		}
	}
}

// TestB11_ConcurrentUnauthorizedConverges: two instances, many callers; the
// provider accepts only the newest token the endpoint issued and the test
// revokes it a few times. Each caller retries once after a 401, as the
// handler does. With Invalidate tied to the token sent, late 401s for
// replaced tokens never throw the newest away: the cluster makes one token
// request per revocation (9 for 8 here) and ends on one token everywhere.
// Dropping the current token on any 401 made the instances take turns
// throwing each other's token away (18 to 37 requests for 8). Run with
// -race.
func TestB11_ConcurrentUnauthorizedConverges(t *testing.T) {
	e := newTokenEndpoint(t)
	var revokedUpTo atomic.Int64
	accepts := func(h string) bool {
		n, err := strconv.ParseInt(strings.TrimPrefix(h, "Bearer "+tokenCanary+"-"), 10, 64)
		return err == nil && n == e.calls.Load() && n > revokedUpTo.Load()
	}
	provider := func(h http.Header) bool { // judges at once, answers up to 3ms later
		ok := accepts(h.Get("Authorization"))
		time.Sleep(time.Duration(rand.N(3000)) * time.Microsecond)
		return ok
	}
	c := newCluster(t, e)
	instances := []Source{c.instance(t), c.instance(t)}
	const (
		callers     = 16
		revocations = 8
	)
	var (
		wg       sync.WaitGroup
		calls    atomic.Int64
		failures atomic.Int64 // refused again after the retry
		errs     = make(chan error, callers)
		stop     = make(chan struct{})
	)
	for i := range callers {
		s := instances[i%2]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				h := http.Header{}
				if err := s.Apply(context.Background(), h); err != nil {
					errs <- err
					return
				}
				if provider(h) {
					continue
				}
				s.Invalidate(context.Background(), h)
				delete(h, "Authorization")
				if err := s.Apply(context.Background(), h); err != nil {
					errs <- err
					return
				}
				if !provider(h) {
					failures.Add(1)
				}
			}
		})
	}
	for range revocations {
		time.Sleep(25 * time.Millisecond)
		c.afterCooldown() // each revocation far from the previous one
		revokedUpTo.Store(e.calls.Load())
	}
	time.Sleep(25 * time.Millisecond)
	c.afterCooldown()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := e.calls.Load()
	t.Logf("%d calls, %d token requests for %d revocations, %d calls refused after their retry", calls.Load(), n, revocations, failures.Load())
	if n > revocations+2 { // the first, one per revocation, one spare
		t.Fatalf("%d token requests for %d revocations: instances throw each other's token away", n, revocations)
	}
	// Quiescent: one more 401 round at most, then every instance and Redis
	// agree on the token the provider accepts.
	for _, s := range instances {
		if h := sent(apply(t, s)); !accepts(h.Get("Authorization")) {
			s.Invalidate(context.Background(), h)
		}
	}
	want := apply(t, instances[0])
	if !accepts(want) || apply(t, instances[1]) != want || c.sharedHeader(t) != want {
		t.Fatalf("instances disagree: %q, %q, Redis %q", want, apply(t, instances[1]), c.sharedHeader(t))
	}
}

// TestRepeatedLate401KeepsRefusedTokens: late 401s about one refused token,
// repeated, do not push the other refused tokens out of the list a refresh
// checks what Redis holds against.
func TestRepeatedLate401KeepsRefusedTokens(t *testing.T) {
	e := newTokenEndpoint(t)
	c := newCluster(t, e)
	a := c.instance(t)
	apply(t, a)
	a.Invalidate(context.Background(), sent(bearer(1)))
	for range 5 {
		a.Invalidate(context.Background(), sent(bearer(7))) // an older token, refused again and again
	}
	s := a.(*oauth2Source)
	s.mu.Lock()
	kept := slices.Contains(s.failed[:], bearer(1))
	s.mu.Unlock()
	if !kept {
		t.Fatalf("repeated 401s about one token pushed the refused token out: %q", s.failed)
	}
}
