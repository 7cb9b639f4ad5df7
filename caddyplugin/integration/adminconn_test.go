package integration

import "net/http"

// caddytest posts each configuration to Caddy's admin endpoint through
// http.DefaultTransport, and every load replaces the admin server, the
// old one shut down a moment later: a POST sent on a kept-alive
// connection to it ends in EOF (a POST is not retried), which failed a
// test at random ("Post http://localhost:2999/load: EOF"). One connection
// a request to loopback costs nothing.
func init() {
	http.DefaultTransport.(*http.Transport).DisableKeepAlives = true
}
