// Package upstreamauth builds the platform credential Passerelle injects
// towards a provider, after the caller's own credentials were removed
// (STYLE.md §7, SECURITY.md B11, D05, I09).
//
// A Source is built once per provider and shared by every request:
//
//   - NewStaticHeader sets a fixed header (an API key).
//   - NewOAuth2 obtains an OAuth2 client-credentials token, caches it until
//     expires_in minus max(10 % of the lifetime, 5 s), refreshes it
//     single-flight on a detached context, purges it when the provider
//     answers 401 to it (Invalidate, with the header that was sent: a late
//     401 about an older token leaves the current one alone), and, with
//     Redis, shares it sealed between instances. A failed fetch is an error (the caller answers 503): a
//     request never leaves without its credential.
//
// Credentials never appear in errors or logs.
package upstreamauth

import (
	"context"
	"net/http"
)

// Source sets one provider's credential on outgoing requests.
type Source interface {
	// Apply sets the credential on the outgoing request header (after the
	// caller's credentials were removed). An error means the request must
	// not be sent (503).
	Apply(ctx context.Context, h http.Header) error
	// Invalidate drops a cached token after the provider answered 401 to
	// a request whose header was sent (the map Apply set the credential
	// on, read before anything is removed from it; not kept). Only the
	// token that was sent is dropped, and only where it is still the
	// current one, here and in Redis: a token that has already been
	// replaced, locally or by another instance, stays (OAuth2 only; no-op
	// for static). It reports whether one retry may carry another
	// credential: false for a static one, and for an OAuth2 token refused
	// again within InvalidateCooldown of the refresh the last 401 forced.
	Invalidate(ctx context.Context, sent http.Header) bool
}
