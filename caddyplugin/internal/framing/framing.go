// Package framing keeps a connection from serving bytes that a proxy in
// front of the gateway may have framed differently (request smuggling,
// SECURITY.md D11).
//
// Go's HTTP/1.1 server reads a request carrying both Content-Length and
// Transfer-Encoding: chunked by its chunks, drops the Content-Length and
// keeps the connection open, whereas RFC 9112 §6.1 requires the server to
// close the connection after answering such a request: a load balancer
// that framed it by its Content-Length would otherwise have the rest of
// the body read here as a next request. The handler no longer sees the
// dropped Content-Length, so every chunked request closes its connection.
package framing

import "net/http"

// CloseIfChunked makes the server close the connection after answering a
// request that came with a Transfer-Encoding. Call it before the answer's
// headers are written. HTTP/2 requests carry none; HTTP/2 answers drop the
// Connection field anyway.
func CloseIfChunked(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}
