package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// The failed authentication quota of a client network (SECURITY.md F04,
// Config.FailedAuthQuota). Each checktoken call takes one unit of it
// before FranceConnect is asked, from the quota every instance shares
// (Redis); the unit is given back unless FranceConnect refuses the token
// (inactive, expired, malformed). So a network never has more checktoken
// calls under way, or refused tokens within the quota's period, than the
// quota, however many instances and concurrent requests, and a flood of
// junk tokens is never relayed to FranceConnect beyond it, whether its
// requests wait for the answer or hang up (the call runs on, detached:
// tokencache). Tokens already in the cache (either level) are served
// without it.

// failedAuthKey is the purpose of the quota's key after the client
// network's (ratelimit.ClientKey).
const failedAuthKey = ":failed_auth"

// failedAuthSpent is the fetch error of a token the client network may not
// have checked: its failed authentications are spent (429).
type failedAuthSpent struct{ retryAfter time.Duration }

func (e *failedAuthSpent) Error() string { return "passerelle: failed authentications spent" }

// checkWithinFailedAuth runs check, the checktoken call, on one unit of the
// client network's quota, or returns a *failedAuthSpent when none is left.
// The unit is given back unless FranceConnect refused the token; it stays
// taken when check panics. Without the quota, or a client network, check
// just runs.
func (p *Pipeline) checkWithinFailedAuth(ctx context.Context, client string, check func() (*fcverify.Facts, error)) (*fcverify.Facts, error) {
	q := p.FailedAuthQuota
	if q.Requests == 0 || client == "" {
		return check()
	}
	d, giveBack, err := p.Limiter.Borrow(ctx, client+failedAuthKey, q)
	if err != nil { // a quota that cannot be enforced (refused at load)
		return check()
	}
	if giveBack == nil {
		return nil, &failedAuthSpent{retryAfter: max(d.RetryAfter, q.Per/time.Duration(q.Requests))}
	}
	f, err := check()
	if !refusedByFranceConnect(f, err) {
		giveBack()
	}
	return f, err
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
