// Package integration holds Passerelle's Caddyfile adapt golden tests and its
// end-to-end tests, which run the real Caddy runtime in-process (caddytest)
// with the sandbox FranceConnect and provider stand-ins.
package integration
