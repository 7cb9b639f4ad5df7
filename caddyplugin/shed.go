package caddyplugin

import (
	"cmp"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/memguard"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/retry"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/shed"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// The provider guards' settings (SECURITY.md F07, I06): 64 calls in
// flight per provider unless its upstream block says otherwise
// (max_in_flight, up to 10 000), the circuit opened by 5 consecutive
// failures within a minute, a probe after 10 s.
const (
	DefaultProviderInFlight = 64
	MaxProviderInFlight     = 10_000
	providerFailures        = 5
	providerOpenFor         = 10 * time.Second
	providerForget          = time.Minute
)

// The cap on the requests an instance takes on at once, every handler's
// catalogue requests and the fronts' in-process dataset calls together
// (SECURITY.md F07, "overall"; the passerelle option max_in_flight). The
// default is far above what 2 cores serve (about 6 000 requests a second
// at a few ms each), and far below what exhausts memory or file
// descriptors while Redis or FranceConnect is slow.
const (
	DefaultRequestsInFlight = 4096
	MaxRequestsInFlight     = 100_000
)

// requestsInFlight counts the requests in the pipeline for the life of the
// process: a reload keeps them counted.
var requestsInFlight = shed.New(shed.Settings{Name: "requests", MaxInFlight: DefaultRequestsInFlight})

// perProvider holds one T per provider name for the life of the process,
// made by newT on first use: a configuration reload keeps the state of
// every provider it still names.
type perProvider[T any] struct {
	mu     sync.Mutex
	byName map[string]T
	newT   func(name string) T
}

// forCatalogue returns the values of the catalogue's providers.
func (p *perProvider[T]) forCatalogue(c *catalogue.Catalogue) map[string]T {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]T, len(c.Providers))
	for name := range c.Providers {
		v, ok := p.byName[name]
		if !ok {
			v = p.newT(name)
			p.byName[name] = v
		}
		out[name] = v
	}
	return out
}

// reset forgets every value (tests).
func (p *perProvider[T]) reset() {
	p.mu.Lock()
	p.byName = map[string]T{}
	p.mu.Unlock()
}

// guards: one guard per provider, so that a reload keeps the calls in
// flight counted and an open circuit open.
var guards = &perProvider[*shed.Guard]{byName: map[string]*shed.Guard{}, newT: func(name string) *shed.Guard {
	return shed.New(shed.Settings{Name: name, MaxInFlight: DefaultProviderInFlight, Failures: providerFailures,
		OpenFor: providerOpenFor, Forget: providerForget,
		// Called under the breaker's lock: the line is written off it.
		OnStateChange: func(name string, open bool) { go logCircuit(name, open) }})
}}

// inFlightCaps remembers the configuration whose caps on calls in flight
// and quota share (rate_limit instances) are in force, and the settings
// before it started.
var inFlightCaps struct {
	mu        sync.Mutex
	owner     *App
	prev      map[*shed.Guard]int64
	limiter   *ratelimit.Limiter // the owner's (its core's)
	prevShare int
}

// applyInFlightCaps sets the cap of each provider's guard to what this
// configuration says (max_in_flight, default 64), and the share of the
// quotas its limiter enforces while Redis fails (rate_limit instances; the
// core, so the limiter, outlives reloads). Called when the configuration
// starts: one refused during its load changes nothing. The calls in flight
// stay counted.
func (a *App) applyInFlightCaps() {
	inFlightCaps.mu.Lock()
	defer inFlightCaps.mu.Unlock()
	prev := map[*shed.Guard]int64{}
	for name, g := range a.shared.Guards { // the pipeline's: the catalogue's providers
		limit := int64(DefaultProviderInFlight)
		if u := a.Upstreams[name]; u != nil && u.MaxInFlight > 0 {
			limit = u.MaxInFlight
		}
		prev[g] = g.Max()
		g.SetMax(limit)
	}
	prev[requestsInFlight] = requestsInFlight.Max()
	requestsInFlight.SetMax(cmp.Or(a.MaxInFlight, DefaultRequestsInFlight))
	inFlightCaps.owner, inFlightCaps.prev = a, prev
	inFlightCaps.limiter, inFlightCaps.prevShare = a.core.limiter, a.core.limiter.Share()
	a.core.limiter.SetShare(a.RateLimits.Instances)
}

// restoreInFlightCaps, when a configuration stops, puts back the caps it
// replaced if no configuration started after it: Caddy stops the apps of
// a configuration whose start failed after this one's (another app's
// listener, say) and keeps the one that was running.
func (a *App) restoreInFlightCaps() {
	inFlightCaps.mu.Lock()
	defer inFlightCaps.mu.Unlock()
	if inFlightCaps.owner != a {
		return
	}
	for g, limit := range inFlightCaps.prev {
		g.SetMax(limit)
	}
	inFlightCaps.limiter.SetShare(inFlightCaps.prevShare)
	inFlightCaps.owner, inFlightCaps.prev, inFlightCaps.limiter = nil, nil, nil
}

// budgets: one retry budget per provider (SECURITY.md E09): 10 % of its
// calls over the last minute, at least 3 a minute; a reload hands out no
// new retries.
var budgets = &perProvider[*retry.Budget]{byName: map[string]*retry.Budget{}, newT: func(string) *retry.Budget {
	return retry.NewBudget(retry.DefaultRatio, retry.DefaultFloor, retry.DefaultWindow)
}}

// quotas holds the in-process quotas for the life of the process: a core
// that replaces another (new credentials, a new FranceConnect or cache
// setting) carries on what callers, client networks and citizens already
// spent, without Redis or while it fails, instead of handing out whole
// quotas again at each such reload.
var quotas struct {
	once  sync.Once
	local *ratelimit.Local
}

// localQuotas returns the process's in-process quotas.
func localQuotas() *ratelimit.Local {
	quotas.once.Do(func() {
		var err error
		if quotas.local, err = ratelimit.NewLocal(0, 0); err != nil {
			panic(err) // only for a size of 0 or less, which NewLocal replaces
		}
	})
	return quotas.local
}

// guardsFor returns the guards of the catalogue's providers.
func guardsFor(c *catalogue.Catalogue) map[string]*shed.Guard { return guards.forCatalogue(c) }

// budgetsFor returns the retry budgets of the catalogue's providers.
func budgetsFor(c *catalogue.Catalogue) map[string]*retry.Budget { return budgets.forCatalogue(c) }

// unsentError reports that reverse_proxy could not connect to the
// provider (its DialError): the request was never sent, and may be retried
// once (SECURITY.md E09).
func unsentError(err error) bool {
	var de reverseproxy.DialError
	return errors.As(err, &de)
}

// logCircuit logs a provider's circuit opening or closing, on the logger
// of the configuration in force.
func logCircuit(provider string, open bool) {
	l := caddy.Log().Named("passerelle")
	if open {
		l.Warn("provider circuit open: calls refused", zap.String("provider", provider),
			zap.Int("consecutive_failures", providerFailures), zap.Duration("retry_after", providerOpenFor))
		return
	}
	l.Info("provider circuit closed", zap.String("provider", provider))
}

// memory is the process's memory guard (SECURITY.md F09, I16), sampled
// four times a second from the first configuration on, for the life of the
// process.
var memory struct {
	once  sync.Once
	guard *memguard.Guard
}

// memoryGuard returns the process's memory guard, started on first use.
func memoryGuard() *memguard.Guard {
	memory.once.Do(func() {
		memory.guard = memguard.New(nil)
		go memory.guard.Run(250*time.Millisecond, nil)
	})
	return memory.guard
}
