// Package tokencache is the two-tier cache of verified FranceConnect token
// facts (SECURITY.md group B).
//
// A lookup goes through, in order:
//
//  1. L1, in process memory, keyed by the raw token string. An L1 hit does no
//     crypto, no network and no allocation: it compares the stored deadline
//     with the clock and returns the cached *fcverify.Facts pointer.
//  2. L2, an optional Redis shared by every instance. The key is
//     "passerelle:v1:fc:" + hex(HMAC-SHA256(KeySecret, token)) (B01); the value
//     is sealed with AES-256-GCM under a key derived from the token itself
//     (B02), so a Redis dump without live tokens reveals nothing and a value
//     cannot be forged without both the token and the server secrets.
//  3. The caller's fetch (the live checktoken call), collapsed per token hash
//     with singleflight and run detached from the first caller's context under
//     its own deadline (B07).
//
// Both tiers obey TTL = min(exp − now − skew, cap), nothing is stored when the
// TTL is not positive (B03), inactive facts live NegativeTTL at most (B06),
// errors are never stored (B05), and every hit re-checks the deadline against
// the clock. Any Redis failure (error, timeout, undecodable or unopenable
// value) is a miss that leads to a live fetch, never an allow (B09).
//
// The cache holds facts, never a decision (B04): scopes, acr and habilitations
// are evaluated by the caller on every request, hit or miss.
//
// # Why the L1 may key on the raw token
//
// The L1 map lives only in this process's memory, which already holds the raw
// token in the request headers it was read from; keying on it exposes nothing
// new, is never serialised, logged or sent anywhere, and saves an HMAC per
// request on the hot path. The shared tier (Redis) never sees the token: not as
// a key, a value nor a command argument. A core dump of the process reveals the
// tokens it was serving either way.
package tokencache
