package pipeline

import (
	"bytes"
	"errors"
	"net/http"
	"sync"
)

// capture buffers the provider answer, up to a limit, so that nothing is
// sent to the caller before filtering succeeded (SECURITY.md C06).
type capture struct {
	header      http.Header
	status      int
	wroteHeader bool
	overflow    bool
	limit       int
	buf         bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }

func (c *capture) WriteHeader(status int) {
	if c.wroteHeader || status < 200 {
		return // 1xx informational answers are not relayed
	}
	c.status, c.wroteHeader = status, true
}

func (c *capture) Write(p []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	if c.overflow || c.buf.Len()+len(p) > c.limit {
		// Fail the write: reverse_proxy stops reading the provider's
		// body and aborts (http.ErrAbortHandler, which serveProvider
		// recovers), so an oversized or endless answer costs neither
		// memory nor the time and CPU to read it to its end; the answer
		// becomes a 502 (SECURITY.md F02).
		c.overflow = true
		return 0, errAnswerTooLarge
	}
	return c.buf.Write(p)
}

// errAnswerTooLarge: a provider answer beyond its max_response_bytes.
var errAnswerTooLarge = errors.New("passerelle: provider answer beyond its size limit")

// Flush is a no-op: the answer is released only after filtering.
func (c *capture) Flush() {}

func (c *capture) reset(limit int) {
	clear(c.header)
	c.status, c.wroteHeader, c.overflow, c.limit = 0, false, false, limit
	c.buf.Reset()
}

var capturePool = sync.Pool{New: func() any { return &capture{header: make(http.Header)} }}

func getCapture(limit int) *capture {
	c := capturePool.Get().(*capture)
	c.reset(limit)
	return c
}

func putCapture(c *capture) {
	if c.buf.Cap() <= 64<<10 {
		capturePool.Put(c)
	}
}

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		bufferPool.Put(b)
	}
}
