package upstreamauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/redislock"
)

// Defaults and bounds.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultRedisTimeout = 50 * time.Millisecond
	// MinMargin is the least a token is refreshed ahead of its expiry; the
	// margin is max(10 % of the lifetime, MinMargin).
	MinMargin = 5 * time.Second
	// DefaultLifetime is assumed when the token endpoint gives no
	// expires_in; a shorter real lifetime ends in a 401 and a refresh.
	DefaultLifetime = 60 * time.Second
	// MaxLifetime bounds how long a token is cached, whatever expires_in says.
	MaxLifetime = 24 * time.Hour
	// MinSealSecretLen is the minimum length of SealSecret.
	MinSealSecretLen = 32
)

// OAuth2Config shapes an OAuth2 client-credentials Source (B11).
type OAuth2Config struct {
	// Name identifies the provider; it names the shared Redis entry.
	Name string
	// TokenURL is the token endpoint: https, or http on a loopback host
	// (tests, local stubs).
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Timeout bounds one token request, including the Redis lookups made
	// on the way. Default 5 s.
	Timeout time.Duration
	// HTTPClient is copied; the copy gets Timeout, no redirects, no cookie
	// jar and a 16 KiB response bound.
	HTTPClient *http.Client
	// Redis, when set, shares the token between instances, sealed under a
	// key derived from SealSecret. Redis failures degrade to per-instance
	// fetching.
	Redis redis.UniversalClient
	// SealSecret: at least 32 bytes; required when Redis is set.
	SealSecret []byte
	// RedisTimeout bounds each Redis command. Default 50 ms.
	RedisTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives debug logs only; never tokens or secrets.
	Logger *zap.Logger
}

// cachedToken is the header value to send and when to stop sending it.
type cachedToken struct {
	header    string // "Bearer " + access token
	refreshAt time.Time
}

type oauth2Source struct {
	name    string
	cc      *clientcredentials.Config // one value: it caches the detected auth style
	hc      *http.Client
	timeout time.Duration
	now     func() time.Time
	log     *zap.Logger
	shared  *sharedStore // nil without Redis

	group singleflight.Group
	mu    sync.RWMutex
	cur   *cachedToken // nil when absent or invalidated
	// failed holds the headers of the last tokens the provider refused
	// (Invalidate), newest first. They are never taken from Redis again: a
	// read may have raced the compare-and-delete, or Redis may have failed
	// it.
	failed [4]string
	// droppedAt is when a provider 401 last dropped the current token.
	droppedAt time.Time
	// failures counts the token requests failed in a row; until retryAt,
	// no other is made (fetchBackoff).
	failures int
	retryAt  time.Time
}

// Pauses after failed token requests: FetchBackoffMin after the first,
// doubling with each failure in a row up to FetchBackoffMax. Within a pause
// the provider's calls are answered 503 without asking the token endpoint
// again: a failing endpoint (down, or refusing the platform's client) is
// not asked once per provider request, which could get the platform's
// client locked out and lengthen the outage.
const (
	FetchBackoffMin = time.Second
	FetchBackoffMax = 30 * time.Second
)

// InvalidateCooldown is the least time between two refreshes forced by
// provider 401s: a provider that refuses every token, or 401s that a
// caller's input provokes, cannot turn each request into a token request.
// Within it, a 401 about the current token is answered as it is (no retry).
const InvalidateCooldown = 5 * time.Second

// NewOAuth2 returns a client-credentials Source. It makes no network call.
func NewOAuth2(cfg OAuth2Config) (Source, error) {
	var errs []error
	bad := func(msg string) { errs = append(errs, fmt.Errorf("%w: %s", ErrBadConfig, msg)) }
	if cfg.Name == "" {
		bad("name is required")
	}
	if err := checkTokenURL(cfg.TokenURL); err != nil {
		bad(err.Error())
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		bad("client id and client secret are required")
	}
	if cfg.Timeout < 0 || cfg.RedisTimeout < 0 {
		bad("timeouts must be positive")
	}
	if cfg.Redis != nil && len(cfg.SealSecret) < MinSealSecretLen {
		bad(fmt.Sprintf("a seal secret of at least %d bytes is required with redis", MinSealSecretLen))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RedisTimeout == 0 {
		cfg.RedisTimeout = DefaultRedisTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &oauth2Source{
		name: cfg.Name,
		cc: &clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     cfg.TokenURL,
			Scopes:       append([]string(nil), cfg.Scopes...),
		},
		hc:      tokenClient(cfg.HTTPClient, cfg.Timeout),
		timeout: cfg.Timeout,
		now:     cfg.Now,
		log:     cfg.Logger,
	}
	if cfg.Redis != nil {
		s.shared = newSharedStore(cfg.Redis, cfg.SealSecret, sharedIdentity(cfg), cfg.RedisTimeout)
	}
	return s, nil
}

func checkTokenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("token url must be an absolute URL without credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || net.ParseIP(h).IsLoopback() {
			return nil
		}
	}
	return errors.New("token url must use https (http only on a loopback host)")
}

// String hides the credentials, should the Source ever be printed.
func (s *oauth2Source) String() string { return "oauth2 client credentials for " + s.name }

// Apply sets Authorization: Bearer <token>. Concurrent callers that find no
// usable token share one refresh, which runs detached from their contexts
// under Timeout; a caller whose ctx ends returns at once.
func (s *oauth2Source) Apply(ctx context.Context, h http.Header) error {
	if v, ok := s.current(); ok {
		h["Authorization"] = []string{v}
		return nil
	}
	ch := s.group.DoChan("token", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		return s.refresh(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return r.Err
		}
		h["Authorization"] = []string{r.Val.(string)}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrTokenUnavailable, ctx.Err())
	}
}

// Invalidate forgets the token the provider refused, the Authorization
// value of sent, where it is still the current one: here, and in Redis by
// an atomic compare-and-delete. A late 401 about a token that was replaced
// since, here or by another instance, leaves the replacement alone. Call it
// once per provider 401; retry once when it reports true (I09). It reports
// false, and keeps the token, when the current token is refused again
// within InvalidateCooldown of the last refresh it forced.
func (s *oauth2Source) Invalidate(ctx context.Context, sent http.Header) bool {
	failed := sent.Get("Authorization")
	if failed == "" {
		return false // not a request this source authorised
	}
	s.mu.Lock()
	current := s.cur != nil && s.cur.header == failed
	if current && !s.droppedAt.IsZero() && s.now().Sub(s.droppedAt) < InvalidateCooldown {
		s.mu.Unlock()
		s.debug("upstreamauth: token refused again within the cooldown; not refreshed")
		return false
	}
	if !slices.Contains(s.failed[:], failed) { // a repeated 401 must not push other refused tokens out
		copy(s.failed[1:], s.failed[:len(s.failed)-1])
		s.failed[0] = failed
	}
	if current {
		s.cur, s.droppedAt = nil, s.now()
	}
	s.mu.Unlock()
	if s.shared != nil {
		switch deleted, err := s.shared.deleteIf(context.WithoutCancel(ctx), failed); {
		case err != nil:
			s.debug("upstreamauth: redis compare-and-delete failed", zap.Error(err))
		case !deleted:
			s.debug("upstreamauth: the refused token is not the shared one; kept it")
		}
	}
	return true
}

func (s *oauth2Source) current() (string, bool) {
	s.mu.RLock()
	t := s.cur
	s.mu.RUnlock()
	if t == nil || !s.now().Before(t.refreshAt) {
		return "", false
	}
	return t.header, true
}

// refresh runs in one goroutine at a time: shared token, else the token
// endpoint.
func (s *oauth2Source) refresh(ctx context.Context) (string, error) {
	if v, ok := s.current(); ok { // installed by a flight that just ended
		return v, nil
	}
	if s.shared != nil {
		v, held := s.fromCluster(ctx)
		if v != "" {
			return v, nil
		}
		if held != nil {
			defer s.shared.unlock(ctx, held)
		}
	}
	if s.pausing() {
		return "", fmt.Errorf("%w: %s: token endpoint failing, pausing", ErrTokenUnavailable, s.name)
	}
	t, err := s.fetch(ctx)
	s.noteFetch(err)
	if err != nil {
		return "", err
	}
	if s.now().Before(t.refreshAt) {
		s.install(t, false)
		if s.shared != nil {
			if err := s.shared.set(ctx, t, t.refreshAt.Sub(s.now())); err != nil {
				s.debug("upstreamauth: sharing the token failed", zap.Error(err))
			} else if s.refused(t) {
				// Refused between install and set: take it back.
				_, _ = s.shared.deleteIf(ctx, t.header)
			}
		}
	}
	// A token whose lifetime is within the margin is used by the callers of
	// this flight only.
	return t.header, nil
}

// pausing reports a pause after failed token requests (FetchBackoffMin).
func (s *oauth2Source) pausing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.now().Before(s.retryAt)
}

// noteFetch records a token request's outcome: a failure starts a pause,
// twice as long as the last one in a row (up to FetchBackoffMax); a
// success ends the series.
func (s *oauth2Source) noteFetch(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.failures, s.retryAt = 0, time.Time{}
		return
	}
	pause := FetchBackoffMin << min(s.failures, 5)
	s.failures++
	s.retryAt = s.now().Add(min(pause, FetchBackoffMax))
}

// lockRounds bounds how many times an instance waits for another's fetch
// that ends without a usable token before it asks the token endpoint
// itself.
const lockRounds = 3

// fromCluster returns the token shared in Redis, installed, waiting for
// the instance that fetches one when another does: one fetch per expiry
// for the whole cluster. When it returns "", the caller asks the token
// endpoint: holding the cluster lock when held is not nil, or without it
// (Redis failed, or other fetches ended without a usable token).
//
// A holder can let the lock go without a usable token: the token it got
// was refused at once and taken back, its fetch failed, or the token was
// too short-lived to share. A waiter then competes for the lock again
// rather than fetching beside the next holder, while at least half of its
// time (the flight's deadline) is left: past that, it fetches at once, so
// that instances never queue behind fetches that share nothing.
func (s *oauth2Source) fromCluster(ctx context.Context) (header string, held *redislock.Lock) {
	// Wait for a fresh token, not for the refused one.
	usable := func(t *cachedToken) bool { return s.now().Before(t.refreshAt) && !s.refused(t) }
	for range lockRounds {
		t, err := s.shared.get(ctx)
		switch {
		case err != nil:
			s.debug("upstreamauth: shared token unavailable", zap.Error(err))
		case t != nil && s.now().Before(t.refreshAt) && s.install(t, true):
			return t.header, nil
		}
		// None, or the token the provider refused, not yet deleted when
		// we read it.
		lock, err := s.shared.lock(ctx, s.timeout)
		switch {
		case err != nil:
			s.debug("upstreamauth: cluster lock unavailable, fetching", zap.Error(err))
			return "", nil
		case lock != nil:
			// The previous holder may have shared its token and released
			// the lock between our read and our SET NX: look once more.
			if t, err := s.shared.get(ctx); err == nil && t != nil && s.now().Before(t.refreshAt) && s.install(t, true) {
				s.shared.unlock(ctx, lock)
				return t.header, nil
			}
			return "", lock
		}
		t, released := s.shared.wait(ctx, usable)
		if t != nil && s.install(t, true) {
			return t.header, nil
		}
		if !released {
			return "", nil // Redis failed, or ctx ended
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < s.timeout/2 {
			break
		}
	}
	s.debug("upstreamauth: other instances' fetches ended without a usable token; fetching")
	return "", nil
}

// install makes t current. A token read from Redis (fromShared) is
// refused when it is the one the provider refused last: the read may have
// raced Invalidate. A token from the token endpoint is always taken.
func (s *oauth2Source) install(t *cachedToken, fromShared bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failed {
		if f != t.header {
			continue
		}
		if fromShared {
			return false
		}
		s.failed[i] = "" // handed out again by the token endpoint
	}
	s.cur = t
	return true
}

// refused reports whether t is one of the tokens the provider refused last.
func (s *oauth2Source) refused(t *cachedToken) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.failed {
		if f != "" && f == t.header {
			return true
		}
	}
	return false
}

// fetch asks the token endpoint. Errors carry a fixed reason only: the
// endpoint's body may echo what we sent.
func (s *oauth2Source) fetch(ctx context.Context) (*cachedToken, error) {
	ctx, tooLarge := withTooLargeFlag(context.WithValue(ctx, oauth2.HTTPClient, s.hc))
	start := s.now()
	tok, err := s.cc.Token(ctx)
	if err != nil {
		reason := "transport error"
		var re *oauth2.RetrieveError
		switch {
		case tooLarge.Load():
			reason = "response too large"
		case errors.As(err, &re) && re.Response != nil:
			reason = "status " + strconv.Itoa(re.Response.StatusCode)
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			reason = "timeout"
		case strings.Contains(err.Error(), "cannot parse"):
			reason = "unreadable response"
		}
		s.debug("upstreamauth: token request failed", zap.String("reason", reason))
		return nil, fmt.Errorf("%w: %s: %s", ErrTokenUnavailable, s.name, reason)
	}
	if !validToken(tok.AccessToken) || (tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "bearer")) {
		return nil, fmt.Errorf("%w: %s: unusable token in response", ErrTokenUnavailable, s.name)
	}
	life := lifetime(tok, time.Now())
	return &cachedToken{
		header:    "Bearer " + tok.AccessToken,
		refreshAt: start.Add(life - margin(life)),
	}, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// lifetime reads expires_in. x/oauth2 sets ExpiresIn for JSON answers and
// only Expiry (from time.Now, not our clock) for form-encoded ones.
func lifetime(tok *oauth2.Token, wallNow time.Time) time.Duration {
	var d time.Duration
	switch {
	case tok.ExpiresIn > 0:
		d = time.Duration(tok.ExpiresIn) * time.Second
	case !tok.Expiry.IsZero():
		d = tok.Expiry.Sub(wallNow).Round(time.Second)
	default:
		d = DefaultLifetime
	}
	return min(d, MaxLifetime)
}

// margin is max(10 % of the lifetime, 5 s) (B11).
func margin(life time.Duration) time.Duration {
	return max(life/10, MinMargin)
}

// validToken: an RFC 6750 b64token-ish string that is safe in a header (D05).
func validToken(t string) bool {
	if t == "" || len(t) > maxTokenResponse {
		return false
	}
	for i := range len(t) {
		if c := t[i]; c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

func (s *oauth2Source) debug(msg string, fields ...zap.Field) {
	if ce := s.log.Check(zapcore.DebugLevel, msg); ce != nil {
		ce.Write(append(fields, zap.String("provider", s.name))...)
	}
}
