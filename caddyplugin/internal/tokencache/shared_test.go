package tokencache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// req: B08
func TestB08_SharedAcrossInstances(t *testing.T) {
	eachBackend(t, []string{"miniredis", "redis-server"}, func(t *testing.T, b backend) {
		s := newShared()
		a, bb := s.cache(t, b.redis(t)), s.cache(t, b.redis(t))
		tok := canaryToken(t)
		f := returns(activeFacts(s.clock.Now().Add(time.Hour)))
		if _, src := mustGet(t, a, tok, f); src != SourceFetch {
			t.Fatalf("first source %s", src)
		}
		got, src := mustGet(t, bb, tok, f)
		if src != SourceL2 || got.Identity.FamilyName != canaryFamily {
			t.Fatalf("second instance: source %s facts %+v", src, got)
		}
		if _, src := mustGet(t, bb, tok, f); src != SourceL1 {
			t.Fatalf("third source %s", src)
		}
		if got := f.calls.Load(); got != 1 {
			t.Fatalf("sequential: fetch calls = %d, want 1", got)
		}

		// Concurrent: one fetch for the whole cluster (singleflight inside
		// each instance, the Redis lock across them).
		tok2 := canaryToken(t)
		slow := &fetcher{fn: func(context.Context) (*fcverify.Facts, error) {
			time.Sleep(20 * time.Millisecond)
			return activeFacts(s.clock.Now().Add(time.Hour)), nil
		}}
		var wg sync.WaitGroup
		for i := range 100 {
			inst := []*Cache{a, bb}[i%2]
			wg.Go(func() {
				if _, _, err := inst.Get(context.Background(), tok2, slow.fetch); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := slow.calls.Load(); got != 1 {
			t.Fatalf("concurrent: fetch calls = %d, want exactly 1", got)
		}
	})
}

// TestB08_ClusterLockHolderFailure: when the instance holding the lock
// fails (errors are never cached), a waiting instance asks for itself
// instead of waiting for an entry that will never come.
func TestB08_ClusterLockHolderFailure(t *testing.T) {
	eachBackend(t, []string{"miniredis", "redis-server"}, func(t *testing.T, b backend) {
		s := newShared()
		a, bb := s.cache(t, b.redis(t)), s.cache(t, b.redis(t))
		tok := canaryToken(t)
		started := make(chan struct{})
		failing := &fetcher{fn: func(context.Context) (*fcverify.Facts, error) {
			close(started)
			time.Sleep(50 * time.Millisecond)
			return nil, errors.New("franceconnect down")
		}}
		ok := returns(activeFacts(s.clock.Now().Add(time.Hour)))
		errc := make(chan error, 1)
		go func() {
			_, _, err := a.Get(context.Background(), tok, failing.fetch)
			errc <- err
		}()
		<-started
		got, src, err := bb.Get(context.Background(), tok, ok.fetch)
		if err != nil || src != SourceFetch || got == nil || ok.calls.Load() != 1 {
			t.Fatalf("waiting instance: source %s, err %v, fetches %d", src, err, ok.calls.Load())
		}
		if err := <-errc; err == nil {
			t.Fatal("the holder's error was lost")
		}
	})
}

// req: B08 — the in-memory default and both Redis backends pass one suite.
func TestB08_Conformance(t *testing.T) {
	eachBackend(t, []string{"memory", "miniredis", "redis-server"}, func(t *testing.T, b backend) {
		s := newShared()
		c := s.cache(t, b.redis(t))
		tok := canaryToken(t)
		exp := s.clock.Now().Add(time.Hour)
		f := returns(activeFacts(exp))

		got, src := mustGet(t, c, tok, f)
		if src != SourceFetch || got.Sub != canarySub {
			t.Fatalf("miss: %s %+v", src, got)
		}
		got2, src := mustGet(t, c, tok, f)
		if src != SourceL1 || got2 != got {
			t.Fatalf("hit: %s, same pointer %v", src, got2 == got)
		}
		s.clock.Advance(DefaultTTLCap)
		b.forward(DefaultTTLCap)
		if _, src := mustGet(t, c, tok, f); src != SourceFetch {
			t.Fatalf("after cap: %s", src)
		}
		if _, _, err := c.Get(context.Background(), "", f.fetch); !errors.Is(err, ErrEmptyToken) {
			t.Fatalf("empty token: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := c.Get(ctx, canaryToken(t), f.fetch); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled ctx: %v", err)
		}
		if st := c.Stats(); st.L1Hits != 1 || st.Fetches != 2 || f.calls.Load() != 2 || st.RedisErrors != 0 || st.RedisCorrupt != 0 {
			t.Fatalf("stats %+v, calls %d", st, f.calls.Load())
		}
	})
}
