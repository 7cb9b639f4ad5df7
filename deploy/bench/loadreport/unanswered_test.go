package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// closingServer accepts connections on loopback; on each, it reads one
// request and hands the connection to serve, which says what to send back
// before the connection closes.
func closingServer(t *testing.T, serve func(n int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				serve(int(n.Add(1)), c)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

const answer200 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

// The first connection is closed unread, as net/http's server does with a
// request read after its Shutdown began; the second is answered.
func firstClosedUnread(n int, c net.Conn) {
	if n > 1 {
		io.WriteString(c, answer200)
	}
}

func TestUnansweredRetrySendsAGetAgainOnce(t *testing.T) {
	u := closingServer(t, firstClosedUnread)
	rt := &unansweredRetry{base: &http.Transport{}}
	resp, err := (&http.Client{Transport: rt}).Get(u)
	if err != nil {
		t.Fatalf("a GET closed unread on a new connection was not sent again: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || rt.retried.Load() != 1 {
		t.Errorf("status %d, %d retries; want 200 after 1", resp.StatusCode, rt.retried.Load())
	}
}

func TestUnansweredRetryLeavesOtherFailuresAlone(t *testing.T) {
	always := func(int, net.Conn) {}
	partial := func(_ int, c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-") }
	reset := func(_ int, c net.Conn) { c.(*net.TCPConn).SetLinger(0) }
	for _, tc := range []struct {
		name   string
		serve  func(int, net.Conn)
		method string
		body   io.Reader
	}{
		{"a POST with a body", firstClosedUnread, http.MethodPost, strings.NewReader("x")},
		{"a DELETE", firstClosedUnread, http.MethodDelete, nil},
		{"an answer cut after its first bytes", partial, http.MethodGet, nil},
		{"a connection reset, not closed", reset, http.MethodGet, nil},
		{"a second close: sent again once only", always, http.MethodGet, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := closingServer(t, tc.serve)
			rt := &unansweredRetry{base: &http.Transport{}}
			req, _ := http.NewRequest(tc.method, u, tc.body)
			resp, err := rt.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("status %d: the failure was hidden", resp.StatusCode)
			}
			want := int64(0)
			if tc.name == "a second close: sent again once only" {
				want = 1
			}
			if got := rt.retried.Load(); got != want {
				t.Errorf("%d retries, want %d (%v)", got, want, err)
			}
		})
	}
}

// TestCountPanics: the reload storm's gateway log check counts the panic
// lines written after its start, of Go's server and of the pipeline, and
// nothing else.
func TestCountPanics(t *testing.T) {
	path := t.TempDir() + "/gateway.log"
	before := `{"level":"error","msg":"http: panic serving 127.0.0.1:1: old"}` + "\n"
	after := `{"level":"info","msg":"access decision"}` + "\n" +
		`{"level":"error","logger":"http.stdlib","msg":"http: panic serving 127.0.0.1:4242: boom"}` + "\n" +
		`{"level":"error","logger":"passerelle","msg":"pipeline panic","type":"string"}` + "\n" +
		`{"level":"info","msg":"a request about panic serving, quoted"}` + "\n"
	if err := os.WriteFile(path, []byte(before+after), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := countPanics(path, int64(len(before))); err != nil || n != 2 {
		t.Errorf("%d panics (%v), want the 2 written after the start", n, err)
	}
}
