package caddyplugin

import (
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/memguard"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/retry"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/shed"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// The provider guards' settings (SECURITY.md F07, I06): 64 calls in
// flight per provider, the circuit opened by 5 consecutive failures
// within a minute, a probe after 10 s.
const (
	providerMaxInFlight = 64
	providerFailures    = 5
	providerOpenFor     = 10 * time.Second
	providerForget      = time.Minute
)

// guards holds one guard per provider name for the life of the process: a
// configuration reload keeps the calls in flight counted and an open
// circuit open.
var guards = struct {
	sync.Mutex
	byName map[string]*shed.Guard
}{byName: map[string]*shed.Guard{}}

// guardsFor returns the guards of the catalogue's providers.
func guardsFor(c *catalogue.Catalogue) map[string]*shed.Guard {
	guards.Lock()
	defer guards.Unlock()
	out := make(map[string]*shed.Guard, len(c.Providers))
	for name := range c.Providers {
		g, ok := guards.byName[name]
		if !ok {
			g = shed.New(shed.Settings{Name: name, MaxInFlight: providerMaxInFlight, Failures: providerFailures,
				OpenFor: providerOpenFor, Forget: providerForget,
				// Called under the breaker's lock: the line is written off it.
				OnStateChange: func(name string, open bool) { go logCircuit(name, open) }})
			guards.byName[name] = g
		}
		out[name] = g
	}
	return out
}

// budgets holds one retry budget per provider name for the life of the
// process: a configuration reload does not hand out new retries.
var budgets = struct {
	sync.Mutex
	byName map[string]*retry.Budget
}{byName: map[string]*retry.Budget{}}

// budgetsFor returns the retry budgets of the catalogue's providers
// (SECURITY.md E09): 10 % of a provider's calls over the last minute, at
// least 3 a minute.
func budgetsFor(c *catalogue.Catalogue) map[string]*retry.Budget {
	budgets.Lock()
	defer budgets.Unlock()
	out := make(map[string]*retry.Budget, len(c.Providers))
	for name := range c.Providers {
		b, ok := budgets.byName[name]
		if !ok {
			b = retry.NewBudget(retry.DefaultRatio, retry.DefaultFloor, retry.DefaultWindow)
			budgets.byName[name] = b
		}
		out[name] = b
	}
	return out
}

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
