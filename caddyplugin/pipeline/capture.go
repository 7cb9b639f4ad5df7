package pipeline

import (
	"bytes"
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
		// Discard the rest rather than fail the write: reverse_proxy aborts
		// the caller's connection on a body copy error. Memory stays bounded
		// by the limit and the answer becomes a 502.
		c.overflow = true
		return len(p), nil
	}
	return c.buf.Write(p)
}

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
