// Package ratelimit enforces quotas (SECURITY.md F03, F04, F06): GCRA in one
// Redis script (github.com/go-redis/redis_rate), shared by every instance,
// or in process (golang.org/x/time/rate) when no Redis is configured.
//
// When Redis fails, each decision falls back to the in-process limiter, with
// this instance's share of the quota (SetShare: 1/N of it for N instances,
// so the cluster stays within the quota; the whole quota by default, N
// times it for the cluster): limits never vanish (F06). Redis keys are
// "rate:passerelle:v1:rl:" + a caller-chosen key that must hold no personal
// data (hash a client address first: see KeyFor and ClientKey).
//
// Client addresses count per network (F04): an IPv4 address alone, an IPv6
// address with the rest of its prefix (/64 by default), since a single
// subscriber commonly holds a whole /64 and picks addresses in it at will.
// Citizens count per habilitation (F05, see CitizenKey).
// In process, client and citizen limiters live apart from the others
// (habilitations): each kind has its own bounded store, so that a flood of
// client networks or citizens evicts limiters of its own kind only and
// never resets a habilitation's quota.
package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// KeyPrefix namespaces the limiter's keys (redis_rate adds "rate:").
const KeyPrefix = "passerelle:v1:rl:"

// Quota is Requests per Per, with a burst of Requests.
type Quota struct {
	Requests int
	Per      time.Duration
}

// Decision is the outcome of one Allow.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // > 0 when refused
	Reset      time.Duration // until the quota is whole again
	Shared     bool          // decided by Redis (false: in process)
}

// Limiter decides quotas. It is safe for concurrent use.
type Limiter struct {
	redis   *redis_rate.Limiter
	timeout time.Duration
	*Local
	errors func()       // called on every Redis failure (metrics)
	share  atomic.Int64 // instances sharing the quotas (SetShare); 0: 1
}

// Local holds the in-process limiters, which decide without Redis (and
// while it fails). Limiters built on one Local (Config.Local) share them:
// a limiter that replaces another (a configuration reload) carries on the
// quotas already spent instead of handing out new ones.
type Local struct {
	local    *store // every key but the client and citizen ones (habilitations)
	clients  *store // keys of kind ClientKind
	citizens *store // keys of kind CitizenKind
}

// NewLocal returns in-process limiters bounded as Config.MaxLocalKeys and
// Config.MaxCitizenKeys say (0: their defaults).
func NewLocal(maxLocalKeys, maxCitizenKeys int) (*Local, error) {
	if maxLocalKeys <= 0 {
		maxLocalKeys = 100_000
	}
	if maxCitizenKeys <= 0 {
		maxCitizenKeys = 100_000
	}
	local, err := newStore(maxLocalKeys)
	if err != nil {
		return nil, err
	}
	clients, err := newStore(maxLocalKeys)
	if err != nil {
		return nil, err
	}
	citizens, err := newStore(maxCitizenKeys)
	if err != nil {
		return nil, err
	}
	return &Local{local: local, clients: clients, citizens: citizens}, nil
}

// Purge forgets every quota spent (tests).
func (l *Local) Purge() {
	for _, s := range []*store{l.local, l.clients, l.citizens} {
		s.cache.Purge()
	}
}

// store holds the in-process limiters of one kind of key.
type store struct {
	cache *lru.Cache[localKey, *rate.Limiter]
	mu    sync.Mutex // serialises creation of limiters
}

func newStore(size int) (*store, error) {
	c, err := lru.New[localKey, *rate.Limiter](size)
	if err != nil {
		return nil, err
	}
	return &store{cache: c}, nil
}

// Config configures a Limiter.
type Config struct {
	// Redis shares the quotas across instances; nil: in process only.
	Redis redis.UniversalClient
	// RedisTimeout bounds one decision in Redis (default 50ms).
	RedisTimeout time.Duration
	// MaxLocalKeys bounds the in-process limiters of client networks and
	// of habilitations, each kind apart (default 100 000 each; the least
	// recently used of a store are forgotten).
	MaxLocalKeys int
	// MaxCitizenKeys bounds the in-process limiters of citizens (default
	// 100 000, some 25 MB at most): a citizen forgotten gets a whole quota
	// again.
	MaxCitizenKeys int
	// OnRedisError is called when Redis fails and the local limiter
	// decides instead.
	OnRedisError func()
	// Local are in-process limiters to share with other Limiters (see
	// Local); nil: new ones, bounded by MaxLocalKeys and MaxCitizenKeys.
	Local *Local
}

// New builds a Limiter. It makes no network call.
func New(cfg Config) (*Limiter, error) {
	if cfg.RedisTimeout <= 0 {
		cfg.RedisTimeout = 50 * time.Millisecond
	}
	local := cfg.Local
	if local == nil {
		var err error
		if local, err = NewLocal(cfg.MaxLocalKeys, cfg.MaxCitizenKeys); err != nil {
			return nil, err
		}
	}
	l := &Limiter{Local: local, timeout: cfg.RedisTimeout, errors: cfg.OnRedisError}
	if cfg.Redis != nil {
		l.redis = redis_rate.NewLimiter(cfg.Redis)
	}
	if l.errors == nil {
		l.errors = func() {}
	}
	return l, nil
}

// ErrBadQuota reports a quota that cannot be enforced.
var ErrBadQuota = errors.New("ratelimit: quota must be positive")

// Allow takes one request from key's quota. In process, a key of kind
// ClientKind ("ip:…", see ClientKey) is kept in the client store, one of
// kind CitizenKind ("cz:…", see CitizenKey) in the citizen store, any other
// in the main store.
func (l *Limiter) Allow(ctx context.Context, key string, q Quota) (Decision, error) {
	if q.Requests <= 0 || q.Per <= 0 {
		return Decision{}, ErrBadQuota
	}
	if l.redis != nil {
		if d, ok := l.allowShared(ctx, key, q, 1); ok {
			return d, nil
		}
		q = l.shareOf(q)
	}
	return decideLocal(l.localLimiter(key, q), q), nil
}

// allowShared takes n requests (-1: gives one back) from key's quota in
// Redis; false when Redis failed (counted). A caller that hung up is no
// Redis failure: one already gone is decided in Redis all the same
// (detached from its cancellation, within the limiter's timeout; only
// then, so that the usual call allocates no extra context), one that
// leaves during the call falls back uncounted.
func (l *Limiter) allowShared(ctx context.Context, key string, q Quota, n int) (Decision, bool) {
	parent := ctx
	if ctx.Err() != nil {
		parent = context.WithoutCancel(ctx)
	}
	c, cancel := context.WithTimeout(parent, l.timeout)
	defer cancel()
	res, err := l.redis.AllowN(c, KeyPrefix+key, redis_rate.Limit{Rate: q.Requests, Burst: q.Requests, Period: q.Per}, n)
	if err != nil {
		if ctx.Err() == nil {
			l.errors()
		}
		return Decision{}, false
	}
	return Decision{
		Allowed: res.Allowed > 0, Limit: q.Requests, Remaining: res.Remaining,
		RetryAfter: max(res.RetryAfter, 0), Reset: max(res.ResetAfter, 0), Shared: true,
	}, true
}

// SetShare tells how many instances share the quotas through Redis: while
// Redis fails, each enforces 1/n of every quota (rounded down, at least 1
// request), so that the cluster stays within it (SECURITY.md F06). 0 or 1:
// the whole quota. It applies to the decisions that follow.
func (l *Limiter) SetShare(n int) { l.share.Store(int64(max(n, 1))) }

// Share returns the count SetShare gave (1 by default).
func (l *Limiter) Share() int { return int(max(l.share.Load(), 1)) }

// shareOf is this instance's share of q while Redis fails.
func (l *Limiter) shareOf(q Quota) Quota {
	if n := int(l.share.Load()); n > 1 {
		q.Requests = max(q.Requests/n, 1)
	}
	return q
}

// Borrow takes one request from key's quota, as Allow does, for work whose
// outcome decides whether it counts: giveBack (nil when refused) returns it
// to the quota, at most once. In Redis, redis_rate's script at a cost of
// -1 gives it back, except when the quota is almost whole again (the
// script then writes nothing): at most one request stays taken, for one
// interval at most. giveBack runs detached from ctx's cancellation; when
// Redis fails it, the request stays taken (counted as a Redis error).
func (l *Limiter) Borrow(ctx context.Context, key string, q Quota) (d Decision, giveBack func(), err error) {
	if q.Requests <= 0 || q.Per <= 0 {
		return Decision{}, nil, ErrBadQuota
	}
	if l.redis != nil {
		if d, ok := l.allowShared(ctx, key, q, 1); ok {
			if !d.Allowed {
				return d, nil, nil
			}
			return d, sync.OnceFunc(func() { l.allowShared(context.WithoutCancel(ctx), key, q, -1) }), nil
		}
		q = l.shareOf(q)
	}
	lim := l.localLimiter(key, q)
	d = decideLocal(lim, q)
	if !d.Allowed {
		return d, nil, nil
	}
	// A request of -1 gives one back (x/time/rate caps the tokens at the
	// burst when it next counts them). Reservation.Cancel would not: the
	// reservation's time has passed once the work is done.
	return d, sync.OnceFunc(func() { lim.AllowN(time.Now(), -1) }), nil
}

// decideLocal takes one request from an in-process limiter of quota q. A
// refusal changes nothing in the limiter (no reservation to cancel: one
// cancelled after a give-back would restore more than it took).
func decideLocal(lim *rate.Limiter, q Quota) Decision {
	now := time.Now()
	every := q.Per / time.Duration(q.Requests)
	d := Decision{Limit: q.Requests, Allowed: lim.AllowN(now, 1)}
	tokens := lim.TokensAt(now)
	if !d.Allowed {
		d.RetryAfter = max(time.Duration((1-tokens)*float64(every)), time.Nanosecond)
	}
	d.Remaining = max(int(math.Floor(tokens)), 0)
	d.Reset = time.Duration((float64(q.Requests) - tokens) * float64(every))
	return d
}

// localKey names one in-process limiter: a struct, so that a lookup
// allocates nothing.
type localKey struct {
	key string
	q   Quota
}

// storeOf returns the in-process store of key: client networks and
// citizens apart from the rest.
func (l *Limiter) storeOf(key string) *store {
	switch {
	case strings.HasPrefix(key, ClientKind+":"):
		return l.clients
	case strings.HasPrefix(key, CitizenKind+":"):
		return l.citizens
	}
	return l.local
}

func (l *Limiter) localLimiter(key string, q Quota) *rate.Limiter {
	st := l.storeOf(key)
	lk := localKey{key, q}
	if lim, ok := st.cache.Get(lk); ok {
		return lim
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if lim, ok := st.cache.Get(lk); ok {
		return lim
	}
	lim := rate.NewLimiter(rate.Every(q.Per/time.Duration(q.Requests)), q.Requests)
	st.cache.Add(localKey{strings.Clone(key), q}, lim)
	return lim
}

// Shared reports whether decisions go through Redis (so keys leave the
// process and must hold no personal data).
func (l *Limiter) Shared() bool { return l.redis != nil }

// KeyFor derives a limiter key from a personal value (a client address):
// hex(HMAC-SHA256(secret, value)), truncated to 128 bits, under kind.
func KeyFor(secret []byte, kind, value string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(value))
	return kind + ":" + hex.EncodeToString(m.Sum(nil)[:16])
}

// ClientKind is the kind of client-address keys ("ip:…"), which have an
// in-process store of their own.
const ClientKind = "ip"

// Bounds of the IPv6 prefix a client address is aggregated to.
const (
	DefaultClientIPv6Prefix = 64
	MinClientIPv6Prefix     = 32
	MaxClientIPv6Prefix     = 128
)

// ClientNetwork returns the network a client address counts in: an IPv4
// address (or an IPv4-mapped IPv6 one, ::ffff:a.b.c.d) as itself, a.b.c.d/32;
// an IPv6 address masked to its first v6Bits bits, e.g. 2001:db8:1:2::/64.
// An IPv6 zone (%eth0) is dropped. v6Bits outside MinClientIPv6Prefix to
// MaxClientIPv6Prefix means DefaultClientIPv6Prefix. An address that does
// not parse is returned unchanged, so that it still gets a quota.
func ClientNetwork(addr string, v6Bits int) string {
	return string(appendClientNetwork(nil, addr, v6Bits))
}

func appendClientNetwork(b []byte, addr string, v6Bits int) []byte {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return append(b, addr...)
	}
	ip = ip.WithZone("").Unmap()
	bits := 32
	if ip.Is6() {
		bits = v6Bits
		if bits < MinClientIPv6Prefix || bits > MaxClientIPv6Prefix {
			bits = DefaultClientIPv6Prefix
		}
	}
	p, err := ip.Prefix(bits) // masked; cannot fail for these bit counts
	if err != nil {
		return append(b, addr...)
	}
	return p.AppendTo(b)
}

// ClientKey returns the limiter key of a client address: ClientKind + ":" +
// its ClientNetwork in process, and, when decisions go through Redis, the
// HMAC of that network under secret (KeyFor), so that no address leaves
// the process. In process it allocates the key only. Another quota of the
// same client network (failed authentications, the front's logins) takes
// the key with ":" and its purpose after it: in process, it stays in the
// client store.
func (l *Limiter) ClientKey(secret []byte, addr string, v6Bits int) string {
	var buf [64]byte // "ip:" and the longest prefix, "…:ffff/128", fit
	b := appendClientNetwork(append(buf[:0], ClientKind+":"...), addr, v6Bits)
	if l.Shared() {
		return KeyFor(secret, ClientKind, string(b[len(ClientKind)+1:]))
	}
	return string(b)
}

// CitizenKind is the kind of citizen keys ("cz:…"), which have an
// in-process store of their own.
const CitizenKind = "cz"

// CitizenKey returns the limiter key of one citizen within one
// habilitation (SECURITY.md F05): CitizenKind + ":" + scope + ":" + citizen
// in process, where scope is the habilitation's limiter key and citizen
// its pseudonym (the audit trail's citizen key); when decisions go through
// Redis, the HMAC of both under secret (KeyFor), so that no pseudonym that
// the audit trail could link leaves the process.
func (l *Limiter) CitizenKey(secret []byte, scope, citizen string) string {
	if l.Shared() {
		return KeyFor(secret, CitizenKind, scope+"\x00"+citizen)
	}
	return CitizenKind + ":" + scope + ":" + citizen
}
