package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// unansweredRetry is the reload storm's transport: it sends a GET again,
// once, when a server closed the new connection it came on without
// answering a byte — the one failure a reload causes that no server-side
// setting avoids. Go's net/http server drops a request it reads after its
// Shutdown began without handing it to any handler when it is the first
// on its connection (golang/go#75591): a connection the replaced
// configuration's server accepted just before the reload, whose request
// arrived just after. Go's client retries such a request by itself on a
// reused connection but not on a new one; RFC 9110 §9.2.2 lets any client
// retry an idempotent request after the connection closes before an
// answer, as browsers do. The storm counts the retries and checks that
// none of those requests reached Passerelle (its request counter against
// the answers), so a gateway that closes a connection while handling a
// request still fails the scenario.
type unansweredRetry struct {
	base    http.RoundTripper
	retried atomic.Int64
}

// RoundTrip sends req; see unansweredRetry.
func (t *unansweredRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	var fresh, sent, answered atomic.Bool
	trace := &httptrace.ClientTrace{
		GotConn:              func(i httptrace.GotConnInfo) { fresh.Store(!i.Reused) },
		WroteRequest:         func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) },
		GotFirstResponseByte: func() { answered.Store(true) },
	}
	resp, err := t.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err == nil || !closedUnanswered(req, err, fresh.Load(), sent.Load(), answered.Load()) {
		return resp, err
	}
	t.retried.Add(1)
	return t.base.RoundTrip(req)
}

// closedUnanswered reports whether err is the end of a new connection that
// carried a whole bodiless GET and got no byte back: what a server that
// never read the request does, and nothing else a client sees the same.
func closedUnanswered(req *http.Request, err error, fresh, sent, answered bool) bool {
	return req.Method == http.MethodGet && (req.Body == nil || req.Body == http.NoBody) &&
		errors.Is(err, io.EOF) && fresh && sent && !answered
}
