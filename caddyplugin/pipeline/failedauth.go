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
// (Redis), and gives it back only when FranceConnect accepts the token (or
// when the call never left: too many in flight). A token refused, and a
// call FranceConnect failed (an error, a timeout, its own 429), keep their
// unit: a network has at most the quota's burst of checks under way or
// unanswered, then one more per interval (20 at once, then one every 3 s,
// by default), however many instances and concurrent requests, whether
// its requests wait for the answer or hang up (the call runs on, detached:
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
// The unit is given back when FranceConnect accepts the token or the call
// never left; it stays taken otherwise, a panic included. Without the
// quota, or a client network, check just runs.
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
	if (err == nil && f != nil && f.Active) || errors.Is(err, fcverify.ErrBusy) {
		giveBack()
	}
	return f, err
}
