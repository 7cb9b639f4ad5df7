package tokencache

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

func TestSourceString(t *testing.T) {
	for s, want := range map[Source]string{SourceL1: "l1", SourceL2: "l2", SourceFetch: "checktoken", Source(9): "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

func TestNew_Config(t *testing.T) {
	rdb := client(t, miniredis.RunT(t).Addr())
	k := secret()
	bad := map[string]Config{
		"redis without secrets":  {Redis: rdb},
		"short key secret":       {Redis: rdb, KeySecret: k[:16], ValueSecret: secret()},
		"short value secret":     {Redis: rdb, KeySecret: k, ValueSecret: k[:31]},
		"same secrets":           {Redis: rdb, KeySecret: k, ValueSecret: k},
		"cap above 60s":          {TTLCap: 61 * time.Second},
		"negative ttl above 10s": {NegativeTTL: 11 * time.Second},
		"negative skew":          {Skew: -time.Second},
		"negative max entries":   {MaxEntries: -1},
	}
	for name, cfg := range bad {
		if _, err := New(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err = %v, want ErrBadConfig", name, err)
		}
	}
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.MaxEntries != 100_000 || c.cfg.TTLCap != 30*time.Second || c.cfg.NegativeTTL != 5*time.Second ||
		c.cfg.Skew != 10*time.Second || c.cfg.RedisTimeout != 50*time.Millisecond || c.cfg.FetchTimeout != 3*time.Second {
		t.Fatalf("defaults: %+v", c.cfg)
	}
}

// req: B03
func TestB03_TTLNeverBeyondExp(t *testing.T) {
	t.Run("property", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		base := time.Unix(1_800_000_000, 0)
		for range 100_000 {
			now := base.Add(time.Duration(r.Int64N(int64(time.Hour))))
			exp := base.Add(time.Duration(r.Int64N(int64(2 * time.Hour))))
			capD := time.Duration(1 + r.Int64N(int64(MaxTTLCap)))
			skew := time.Duration(r.Int64N(int64(30 * time.Second)))
			neg := time.Duration(1 + r.Int64N(int64(MaxNegativeTTL)))
			d := ttl(true, exp, now, capD, skew, neg)
			if d > 0 && (now.Add(d).After(exp.Add(-skew)) || d > capD) {
				t.Fatalf("ttl %s beyond exp-skew or cap (now %s exp %s cap %s skew %s)", d, now, exp, capD, skew)
			}
			if want := min(exp.Sub(now)-skew, capD); d != want {
				t.Fatalf("ttl %s, want %s", d, want)
			}
			if d := ttl(false, time.Time{}, now, capD, skew, neg); d <= 0 || d > neg || d > capD || d > MaxNegativeTTL {
				t.Fatalf("negative ttl %s (neg %s cap %s)", d, neg, capD)
			}
		}
		if d := ttl(true, time.Time{}, base, time.Minute, 0, time.Second); d > 0 {
			t.Fatal("facts without exp would be stored")
		}
	})

	t.Run("nothing stored when ttl <= 0", func(t *testing.T) {
		mr := miniredis.RunT(t)
		s := newShared()
		c := s.cache(t, client(t, mr.Addr()))
		f := returns(activeFacts(s.clock.Now().Add(10 * time.Second))) // exp - skew = now
		mustGet(t, c, canaryToken(t), f)
		if len(mr.Keys()) != 0 || c.Stats().L1Entries != 0 {
			t.Fatalf("stored an entry with ttl <= 0: redis %v, l1 %d", mr.Keys(), c.Stats().L1Entries)
		}
	})

	t.Run("every hit re-checks exp", func(t *testing.T) {
		eachBackend(t, []string{"memory", "miniredis"}, func(t *testing.T, b backend) {
			s := newShared()
			tok := canaryToken(t)
			f := returns(activeFacts(s.clock.Now().Add(25 * time.Second))) // ttl = 15s
			a := s.cache(t, b.redis(t))
			mustGet(t, a, tok, f)
			s.clock.Advance(14 * time.Second)
			if _, src := mustGet(t, a, tok, f); src != SourceL1 {
				t.Fatalf("source %s before deadline", src)
			}
			// Redis still holds the entry (its clock did not move), but a
			// second instance must see it is past exp - skew.
			s.clock.Advance(time.Second)
			if _, src := mustGet(t, s.cache(t, b.redis(t)), tok, f); src != SourceFetch {
				t.Fatalf("L2 served an entry past its deadline (source %s)", src)
			}
			if _, src := mustGet(t, a, tok, f); src != SourceFetch {
				t.Fatalf("L1 served an entry past its deadline (source %s)", src)
			}
			if f.calls.Load() != 3 {
				t.Fatalf("fetches = %d, want 3", f.calls.Load())
			}
		})
	})

	t.Run("L1 from L2 hit keeps the writer's deadline", func(t *testing.T) {
		mr := miniredis.RunT(t)
		s := newShared()
		tok := canaryToken(t)
		f := returns(activeFacts(s.clock.Now().Add(time.Hour))) // ttl = cap = 30s
		mustGet(t, s.cache(t, client(t, mr.Addr())), tok, f)
		s.clock.Advance(20 * time.Second)
		b := s.cache(t, client(t, mr.Addr()))
		if _, src := mustGet(t, b, tok, f); src != SourceL2 {
			t.Fatalf("source %s", src)
		}
		s.clock.Advance(10 * time.Second) // 30s after the fetch: cap reached
		if _, src := mustGet(t, b, tok, f); src != SourceFetch {
			t.Fatalf("L1 copy of an L2 entry outlived the cap (source %s)", src)
		}
	})

	t.Run("redis PTTL", func(t *testing.T) {
		rdb := client(t, redistest.Addr(t))
		s := newShared()
		s.clock = &clock{t: time.Now()} // real Redis counts real time
		c := s.cache(t, rdb)
		cases := []struct {
			exp  time.Duration
			want time.Duration // upper bound of PTTL
		}{
			{exp: 20 * time.Second, want: 10 * time.Second}, // exp - skew
			{exp: time.Hour, want: 30 * time.Second},        // cap
			{exp: 10500 * time.Millisecond, want: 500 * time.Millisecond},
		}
		for _, tc := range cases {
			tok := canaryToken(t)
			mustGet(t, c, tok, returns(activeFacts(s.clock.Now().Add(tc.exp))))
			pttl, err := rdb.PTTL(context.Background(), c.codec.redisKey(tok)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if pttl <= 0 || pttl > tc.want || pttl < tc.want-2*time.Second {
				t.Fatalf("exp in %s: PTTL %s, want in (%s-2s, %s]", tc.exp, pttl, tc.want, tc.want)
			}
		}
	})
}

// req: B05
func TestB05_ErrorsNeverCached(t *testing.T) {
	eachBackend(t, []string{"memory", "miniredis"}, func(t *testing.T, b backend) {
		s := newShared()
		rdb := b.redis(t)
		c := s.cache(t, rdb)
		tok := canaryToken(t)
		good := activeFacts(s.clock.Now().Add(time.Hour))
		failures := []func(context.Context) (*fcverify.Facts, error){
			func(context.Context) (*fcverify.Facts, error) { return nil, errStub },
			func(context.Context) (*fcverify.Facts, error) { return nil, context.DeadlineExceeded },
			func(context.Context) (*fcverify.Facts, error) { return good, errStub }, // facts with an error
			func(context.Context) (*fcverify.Facts, error) { return nil, nil },
			func(context.Context) (*fcverify.Facts, error) { panic("stub") },
		}
		for i, fail := range failures {
			f, src, err := c.Get(context.Background(), tok, fail)
			if err == nil || f != nil || src != SourceFetch {
				t.Fatalf("failure %d: facts %v src %s err %v", i, f, src, err)
			}
			if c.Stats().L1Entries != 0 {
				t.Fatalf("failure %d left an L1 entry", i)
			}
			if rdb != nil {
				if n, _ := rdb.DBSize(context.Background()).Result(); n != 0 {
					t.Fatalf("failure %d left %d Redis entries", i, n)
				}
			}
		}
		if _, _, err := c.Get(context.Background(), tok, failures[0]); !errors.Is(err, errStub) {
			t.Fatalf("fetch error not passed through: %v", err)
		}
		ok := returns(good)
		if _, src := mustGet(t, c, tok, ok); src != SourceFetch {
			t.Fatalf("retry source %s", src)
		}
		if _, src := mustGet(t, c, tok, ok); src != SourceL1 {
			t.Fatalf("after success source %s", src)
		}
		if st := c.Stats(); st.FetchErrors != 6 || st.Fetches != 7 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// req: B06
func TestB06_NegativeCaching(t *testing.T) {
	mr := miniredis.RunT(t)
	s := newShared()
	rdb := client(t, mr.Addr())
	c := s.cache(t, rdb)
	tok := canaryToken(t)
	f := returns(&fcverify.Facts{Active: false})

	got, src := mustGet(t, c, tok, f)
	if got.Active || src != SourceFetch {
		t.Fatalf("got %+v from %s", got, src)
	}
	key := c.codec.redisKey(tok)
	if pttl := mr.TTL(key); pttl <= 0 || pttl > DefaultNegativeTTL {
		t.Fatalf("negative entry TTL %s, want (0, 5s]", pttl)
	}
	s.clock.Advance(4 * time.Second)
	if _, src := mustGet(t, c, tok, f); src != SourceL1 {
		t.Fatalf("negative entry not served from L1 (%s)", src)
	}
	if _, src := mustGet(t, s.cache(t, rdb), tok, f); src != SourceL2 {
		t.Fatalf("negative entry not shared (%s)", src)
	}
	s.clock.Advance(time.Second)
	mr.FastForward(5 * time.Second)
	if _, src := mustGet(t, c, tok, f); src != SourceFetch {
		t.Fatalf("negative entry outlived 5s (%s)", src)
	}

	// Configured NegativeTTL is honoured, capped by TTLCap, and bounded at 10s.
	for _, tc := range []struct{ neg, capD, want time.Duration }{
		{10 * time.Second, 30 * time.Second, 10 * time.Second},
		{8 * time.Second, 3 * time.Second, 3 * time.Second},
	} {
		c := s.cache(t, rdb, func(cfg *Config) { cfg.NegativeTTL, cfg.TTLCap = tc.neg, tc.capD })
		tok := canaryToken(t)
		mustGet(t, c, tok, f)
		if d := mr.TTL(c.codec.redisKey(tok)); d != tc.want {
			t.Fatalf("neg %s cap %s: TTL %s, want %s", tc.neg, tc.capD, d, tc.want)
		}
	}
	if _, err := New(Config{NegativeTTL: 11 * time.Second}); err == nil {
		t.Fatal("NegativeTTL above 10s accepted")
	}
}

// req: B07
func TestB07_Singleflight(t *testing.T) {
	eachBackend(t, []string{"memory", "miniredis"}, func(t *testing.T, b backend) {
		s := newShared()
		c := s.cache(t, b.redis(t))
		tok := canaryToken(t)
		started := make(chan struct{})
		release := make(chan struct{})
		var fetchCtxErr error
		f := &fetcher{fn: func(ctx context.Context) (*fcverify.Facts, error) {
			close(started)
			<-release
			fetchCtxErr = ctx.Err()
			if _, ok := ctx.Deadline(); !ok {
				return nil, errors.New("fetch has no deadline")
			}
			return activeFacts(s.clock.Now().Add(time.Hour)), nil
		}}

		// The first caller starts the lookup, then goes away.
		firstCtx, cancelFirst := context.WithCancel(context.Background())
		firstErr := make(chan error, 1)
		go func() {
			_, _, err := c.Get(firstCtx, tok, f.fetch)
			firstErr <- err
		}()
		<-started

		const n = 199
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				other := &fetcher{fn: func(context.Context) (*fcverify.Facts, error) {
					return nil, errors.New("second fetch")
				}}
				got, _, err := c.Get(context.Background(), tok, other.fetch)
				if err == nil && !got.Active {
					err = errors.New("inactive facts")
				}
				errs <- err
			})
		}
		// Wait until every caller joined the flight before releasing it.
		deadline := time.Now().Add(5 * time.Second)
		for c.Stats().Misses < n+1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cancelFirst()
		if err := <-firstErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("first caller err = %v, want context.Canceled", err)
		}
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a waiting caller failed: %v", err)
			}
		}
		if got := f.calls.Load(); got != 1 {
			t.Fatalf("fetch calls = %d, want 1", got)
		}
		if fetchCtxErr != nil {
			t.Fatalf("the fetch saw its context cancelled: %v", fetchCtxErr)
		}
		if st := c.Stats(); st.Fetches != 1 || st.Misses != n+1 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("fetch deadline", func(t *testing.T) {
		s := newShared()
		c := s.cache(t, nil, func(cfg *Config) { cfg.FetchTimeout = 50 * time.Millisecond })
		f := &fetcher{fn: func(ctx context.Context) (*fcverify.Facts, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		start := time.Now()
		_, _, err := c.Get(context.Background(), canaryToken(t), f.fetch)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Fatalf("err %v after %s", err, time.Since(start))
		}
	})
}

// req: B09
func TestB09_RedisFailureIsMiss(t *testing.T) {
	t.Run("killed", func(t *testing.T) {
		srv := redistest.Start(t) // own process: this test kills it
		s := newShared()
		s.clock = &clock{t: time.Now()}
		tok := canaryToken(t)
		f := returns(activeFacts(s.clock.Now().Add(time.Hour)))
		mustGet(t, s.cache(t, client(t, srv.Addr)), tok, f)
		b := s.cache(t, client(t, srv.Addr))
		if _, src := mustGet(t, b, canaryToken(t), f); src != SourceFetch {
			t.Fatal("warm-up")
		}
		srv.Kill()

		start := time.Now()
		got, src := mustGet(t, b, tok, f) // in Redis before the kill, not in b's L1
		if src != SourceFetch || !got.Active {
			t.Fatalf("source %s", src)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("Redis down cost %s", d)
		}
		if st := b.Stats(); st.RedisErrors == 0 {
			t.Fatalf("redis errors not counted: %+v", st)
		}
		// Redis down and checktoken down: an error, never facts.
		fresh := s.cache(t, client(t, srv.Addr))
		facts, _, err := fresh.Get(context.Background(), tok, func(context.Context) (*fcverify.Facts, error) { return nil, errStub })
		if !errors.Is(err, errStub) || facts != nil {
			t.Fatalf("both down: facts %v err %v", facts, err)
		}
	})

	t.Run("slow", func(t *testing.T) {
		addr := redistest.Addr(t)
		proxy := redistest.NewDelayProxy(t, addr, 500*time.Millisecond)
		s := newShared()
		s.clock = &clock{t: time.Now()}
		tok := canaryToken(t)
		f := returns(activeFacts(s.clock.Now().Add(time.Hour)))
		mustGet(t, s.cache(t, client(t, addr)), tok, f) // stored through the fast path
		slow := s.cache(t, client(t, proxy.Addr))
		for range 3 {
			start := time.Now()
			_, src := mustGet(t, slow, tok, f)
			if src != SourceFetch {
				t.Fatalf("source %s through a 500ms Redis", src)
			}
			if d := time.Since(start); d > 300*time.Millisecond {
				t.Fatalf("slow Redis cost %s per miss, want about 2 x 50ms", d)
			}
			slow.l1 = newL1(10) // forget L1 to miss again
		}
		if st := slow.Stats(); st.RedisErrors == 0 {
			t.Fatalf("timeouts not counted: %+v", st)
		}
	})

	t.Run("corrupted", func(t *testing.T) {
		mr := miniredis.RunT(t)
		s := newShared()
		tok := canaryToken(t)
		f := returns(activeFacts(s.clock.Now().Add(time.Hour)))
		a := s.cache(t, client(t, mr.Addr()))
		mustGet(t, a, tok, f)
		key := a.codec.redisKey(tok)
		good, _ := mr.Get(key)
		otherTok := canaryToken(t)
		mustGet(t, a, otherTok, f)
		movedVal, _ := mr.Get(a.codec.redisKey(otherTok))
		forged, _ := codec{keySecret: s.kKey, valSecret: secret()}.seal(tok, key, activeFacts(s.clock.Now().Add(time.Hour)), s.clock.Now().Add(time.Minute))

		for i, bad := range []string{
			good[:len(good)-1] + string(good[len(good)-1]^1),
			"garbage",
			"",
			movedVal,
			string(forged),
			strings.Repeat("A", maxValueLen+1),
		} {
			if err := mr.Set(key, bad); err != nil {
				t.Fatal(err)
			}
			b := s.cache(t, client(t, mr.Addr()))
			if _, src := mustGet(t, b, tok, f); src != SourceFetch {
				t.Fatalf("corruption %d served from %s", i, src)
			}
			// Read before and after taking the cluster lock: counted each time.
			if st := b.Stats(); st.RedisCorrupt < 1 {
				t.Fatalf("corruption %d not counted: %+v", i, st)
			}
		}
		// A wrong-type value is a Redis error, also a miss.
		mr.Del(key)
		_, _ = mr.Lpush(key, "x")
		b := s.cache(t, client(t, mr.Addr()))
		if _, src := mustGet(t, b, tok, f); src != SourceFetch {
			t.Fatalf("wrong type served from %s", src)
		}
	})
}

// req: B01, B02 — after a run, every key and value in Redis is free of the
// token and identity canaries.
func TestB01B02_RedisDumpHasNoCanaries(t *testing.T) {
	addr := redistest.Addr(t)
	rdb := client(t, addr)
	s := newShared()
	s.clock = &clock{t: time.Now()}
	var tokens []string
	for range 20 {
		tok := canaryToken(t)
		tokens = append(tokens, tok)
		mustGet(t, s.cache(t, rdb), tok, returns(activeFacts(s.clock.Now().Add(time.Hour))))
	}
	neg := canaryToken(t)
	tokens = append(tokens, neg)
	mustGet(t, s.cache(t, rdb), neg, returns(&fcverify.Facts{Active: false}))

	canaries := []string{"CANARYTOKEN", canaryFamily, canaryBirthdate, canarySub}
	for _, tok := range tokens {
		canaries = append(canaries, strings.TrimPrefix(tok, "CANARYTOKEN-"))
	}
	ctx := context.Background()
	ours := 0
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		dump, err := rdb.Dump(ctx, key).Result()
		if err != nil {
			t.Fatalf("DUMP: %v", err)
		}
		blobs := []string{key, dump}
		if typ, _ := rdb.Type(ctx, key).Result(); typ == "string" {
			v, _ := rdb.Get(ctx, key).Result() // DUMP may be LZF-compressed
			blobs = append(blobs, v)
		}
		for _, blob := range blobs {
			for _, c := range canaries {
				if strings.Contains(blob, c) {
					t.Fatalf("canary %q found in Redis (key %q)", c, key)
				}
			}
		}
		for _, tok := range tokens {
			if key == s.cache(t, nil, func(cfg *Config) { cfg.Redis = rdb }).codec.redisKey(tok) {
				ours++
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if ours != len(tokens) {
		t.Fatalf("found %d of our %d keys: the scan did not cover the run", ours, len(tokens))
	}
}

// req: B09
// TestB09_StuckLockHolder: a lock whose holder never writes nor releases it
// (its Redis commands failing while ours work) makes a waiting instance
// wait half its lookup's time, then ask FranceConnect itself: the answer
// comes, it is not a 503 (a review's finding).
func TestB09_StuckLockHolder(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := newShared()
	c := s.cache(t, rdb, func(cfg *Config) { cfg.FetchTimeout = 600 * time.Millisecond })
	tok := canaryToken(t)
	mr.Set(lockKey(c.codec.redisKey(tok)), "a-holder-gone-silent")
	facts := activeFacts(s.clock.Now().Add(time.Hour))
	f := &fetcher{fn: func(ctx context.Context) (*fcverify.Facts, error) {
		return facts, ctx.Err() // as checktoken: no time left, no answer
	}}
	start := time.Now()
	got, src, err := c.Get(context.Background(), tok, f.fetch)
	if err != nil || got == nil || src != SourceFetch || f.calls.Load() != 1 {
		t.Fatalf("Get = %v, %s, %v (fetches %d)", got, src, err, f.calls.Load())
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("answered after %v: the lock was not waited for", took)
	}
}
