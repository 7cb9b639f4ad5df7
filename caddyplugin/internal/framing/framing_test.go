package framing

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSmuggledRequestNotServed: behind a proxy that frames by
// Content-Length, "0\r\n\r\nGET /smuggled" is body; Go's server frames by
// chunks and, without CloseIfChunked, serves /smuggled on the same
// connection. With it, the connection closes after the first answer.
func TestSmuggledRequestNotServed(t *testing.T) {
	for _, guarded := range []bool{false, true} {
		var mu sync.Mutex
		var served []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			served = append(served, r.URL.Path)
			mu.Unlock()
			if guarded {
				CloseIfChunked(w, r)
			}
			w.WriteHeader(http.StatusMethodNotAllowed)
		}))
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprint(conn, "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(conn)
		for {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				break
			}
			resp.Body.Close()
		}
		conn.Close()
		srv.Close()
		mu.Lock()
		smuggled := len(served) == 2
		mu.Unlock()
		if guarded && smuggled {
			t.Errorf("guarded: served %v", served)
		}
		if !guarded && !smuggled {
			// The premise: Go's server serves the second request.
			t.Errorf("unguarded: served %v; Go's server changed: revisit this package", served)
		}
	}
}

// TestKeepAliveOtherwise: a request with a Content-Length keeps its
// connection.
func TestKeepAliveOtherwise(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("a=b"))
	CloseIfChunked(w, r)
	if v := w.Header().Get("Connection"); v != "" {
		t.Fatalf("Connection %q", v)
	}
	r.TransferEncoding = []string{"chunked"}
	CloseIfChunked(w, r)
	if v := w.Header().Get("Connection"); v != "close" {
		t.Fatalf("Connection %q", v)
	}
}
