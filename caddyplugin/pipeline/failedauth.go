package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// The failed authentication quota of a client network (SECURITY.md F04,
// Config.FailedAuthQuota): each FranceConnect token FranceConnect refuses
// spends one, and a checktoken call is made only while the network has one
// left for it and for each of its calls still under way, so that a flood of
// junk tokens is never relayed to FranceConnect, whether its requests wait
// for the answer or hang up (the call runs on, detached: tokencache).
// Tokens already in the cache (either level) are served without it.

// failedAuthKey is the purpose of the quota's key after the client
// network's (ratelimit.ClientKey).
const failedAuthKey = ":failed_auth"

// failedAuthSpent is the fetch error of a token the client network may not
// have checked: its failed authentications are spent (429).
type failedAuthSpent struct{ retryAfter time.Duration }

func (e *failedAuthSpent) Error() string { return "passerelle: failed authentications spent" }

// checksInFlight counts, by client network, the checktoken calls under way
// that may still spend the network's quota: reserveCheck lets a call
// through only while the quota has one left for each, so that concurrent
// junk tokens cannot all pass one last unit. An entry lives while its
// network has calls under way: the map is bounded by those.
var checksInFlight = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// reserveCheck takes one of the client network's checktoken slots, or
// returns a *failedAuthSpent when the quota has none left for one more call.
// release gives the slot back once the call's refusal, if any, is spent.
// Without the quota, or a client network, every call goes through.
func (p *Pipeline) reserveCheck(ctx context.Context, client string) (release func(), err error) {
	q := p.FailedAuthQuota
	if q.Requests == 0 || client == "" {
		return func() {}, nil
	}
	checksInFlight.Lock()
	checksInFlight.n[client]++
	inFlight := checksInFlight.n[client]
	checksInFlight.Unlock()
	release = func() {
		checksInFlight.Lock()
		defer checksInFlight.Unlock()
		if checksInFlight.n[client]--; checksInFlight.n[client] <= 0 {
			delete(checksInFlight.n, client)
		}
	}
	d, err := p.Limiter.Peek(ctx, client+failedAuthKey, q)
	if err == nil && d.Remaining < inFlight {
		release()
		return nil, &failedAuthSpent{retryAfter: max(d.RetryAfter, q.Per/time.Duration(q.Requests))}
	}
	return release, nil
}

// spendFailedAuth spends one failed authentication of the client network.
func (p *Pipeline) spendFailedAuth(ctx context.Context, client string) {
	if p.FailedAuthQuota.Requests > 0 && client != "" {
		_, _ = p.Limiter.Allow(ctx, client+failedAuthKey, p.FailedAuthQuota)
	}
}

// refusedByFranceConnect reports a checktoken answer that refuses the
// token: inactive, expired or malformed. FranceConnect failing is not the
// caller's failure.
func refusedByFranceConnect(f *fcverify.Facts, err error) bool {
	if err != nil {
		return errors.Is(err, fcverify.ErrTokenExpired) || errors.Is(err, fcverify.ErrTokenMalformed)
	}
	return f != nil && !f.Active
}
