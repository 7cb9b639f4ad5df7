package upstreamauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/outbound"
)

// maxTokenResponse bounds a token endpoint answer.
const maxTokenResponse = 16 << 10

var errTooLarge = errors.New("upstreamauth: token response too large")

// tooLargeKey carries a flag the limited body sets, because x/oauth2 wraps
// read errors with %v and errors.Is cannot see errTooLarge through it.
type tooLargeKey struct{}

// limitTransport fails reading a response body past max bytes.
type limitTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	flag, _ := req.Context().Value(tooLargeKey{}).(*atomic.Bool)
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, flag: flag}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
	flag *atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // read one byte past the limit to detect it
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		if b.flag != nil {
			b.flag.Store(true)
		}
		return 0, errTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// tokenClient returns the http.Client of the token requests: base (or a
// fresh one) with a timeout, no redirects, no cookie jar and a bounded
// response body.
func tokenClient(base *http.Client, timeout time.Duration) *http.Client {
	var hc http.Client
	if base != nil {
		hc = *base
	}
	if hc.Timeout <= 0 || hc.Timeout > timeout {
		hc.Timeout = timeout
	}
	rt := hc.Transport
	if rt == nil {
		t := outbound.Transport() // SECURITY.md E03, E08
		t.MaxIdleConnsPerHost = 2
		t.ResponseHeaderTimeout = timeout
		rt = t
	}
	hc.Transport = &limitTransport{next: rt, max: maxTokenResponse}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Jar = nil
	return &hc
}

func withTooLargeFlag(ctx context.Context) (context.Context, *atomic.Bool) {
	f := new(atomic.Bool)
	return context.WithValue(ctx, tooLargeKey{}, f), f
}
