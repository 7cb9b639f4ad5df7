// Package fcverify is the FranceConnect v2 checktoken client of Passerelle,
// which acts as a data provider ("FD", DOMAIN.md §2). It sends an access
// token to FranceConnect and turns the encrypted, signed answer into Facts.
//
// CheckToken runs these checks, in this order, and stops at the first
// failure (SECURITY.md group A; reason codes in brackets, see Reason):
//
//  1. The token is a non-empty RFC 6750 b64token of at most 4 KiB, else
//     nothing is sent [token_malformed].
//  2. POST {checktoken} with exactly token, client_id and client_secret as
//     a form body and Accept: application/token-introspection+jwt, under
//     Config.Timeout; redirects are never followed (A04, E02). Transport
//     errors, timeouts, 429 and 5xx [fc_unavailable]; 400 and 401 mean our
//     own credentials or request are wrong [fc_client_auth_failed]; any
//     other status, 3xx included [fc_bad_response].
//  3. Content-Type application/token-introspection+jwt; body at most
//     64 KiB; a compact JWE of exactly five base64url segments (A05).
//  4. JWE protected header: no zip, no crit, no jku/x5u/jwk/x5c; alg in
//     Config.KeyAlgorithms; enc A256GCM; cty absent or JWT; kid, when
//     present, names one of our keys and that key is bound to alg, else the
//     keys bound to alg are tried (A06, A09, A10).
//  5. ECDH-ES: epk is a public EC key on our key's curve, coordinates of
//     the field size, a valid point, checked before key agreement (A07).
//  6. go-jose decrypts with the chosen key and only {alg} × {A256GCM}.
//  7. The plaintext is a compact JWS verified through go-oidc with
//     Config.SigningAlgorithms and our key set, which requires: no crit, no
//     jku/x5u/jwk/x5c; alg allowed; a kid; typ absent or
//     token-introspection+jwt; the kid in the FranceConnect JWKS and bound
//     to the header alg (ES256 ⇔ EC P-256, RS256 ⇔ RSA ≥ 2048 bits); a
//     valid signature (A08, A09, A10). The JWKS is fetched lazily, at most
//     once per cooldown, single-flight, detached from the caller; a failed
//     fetch keeps the last good keys up to Config.JWKSMaxStale
//     [jwks_unavailable] (A17, I04).
//  8. Outer claims: a JSON object without duplicate members; iss equals
//     Config.Issuer byte for byte; aud is a string or array of strings
//     containing Config.ClientID; iat numeric, at most now+skew and at least
//     now−MaxIssuedAge; exp and nbf, which FranceConnect does not send,
//     numeric when present, with now < exp+skew and nbf ≤ now+skew;
//     token_introspection is an object (A10, A11, A12).
//  9. token_introspection.active is the JSON boolean false → Facts{Active:
//     false}; true → continue; anything else (absent, "true", 1, null)
//     [fc_bad_response] (A14).
//  10. Active answers need numeric exp and iat with iat < exp and
//     iat ≤ now+skew (nbf, when present, numeric and ≤ now+skew), a
//     non-empty sub, exactly one non-empty aud (the caller, A15), a
//     string scope, typed identity claims; then now < exp+skew else
//     ErrTokenExpired [token_expired] (A13, A14).
//
// No claim is used, logged or returned before all of this passed (A18).
// Errors wrap one sentinel with a fixed detail and never carry the token,
// claims, keys or the client secret.
package fcverify
