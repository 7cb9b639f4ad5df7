package upstreamauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// req: D05
func TestD05_StaticHeader(t *testing.T) {
	s, err := NewStaticHeader("x-api-key", "k3y value")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Api-Key": {"caller value"}}
	if err := s.Apply(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if got := h.Values("X-Api-Key"); len(got) != 1 || got[0] != "k3y value" {
		t.Fatalf("header %v", got)
	}
	s.Invalidate(context.Background(), h) // no-op
	if strings.Contains(s.(interface{ String() string }).String(), "k3y") {
		t.Fatal("String shows the value")
	}

	for _, tc := range []struct{ name, value string }{
		{"", "v"}, {"X Key", "v"}, {"X:Key", "v"}, {"X\r\nKey", "v"}, {"X-Kéy", "v"},
		{"Host", "v"}, {"content-length", "v"}, {"Transfer-Encoding", "v"}, {"Connection", "v"}, {"proxy-authorization", "v"},
		{"X-Key", ""}, {"X-Key", "a\rb"}, {"X-Key", "a\nb"}, {"X-Key", "a\x00b"}, {"X-Key", "a\tb"},
		{"X-Key", "a\x7fb"}, {"X-Key", "a\x1bb"}, {"X-Key", "é"}, {"X-Key", " v"}, {"X-Key", "v "},
		{"X-Key", "v\r\nX-Admin: 1"}, {"X-Key", "SECRET\x00VALUE"},
	} {
		if _, err := NewStaticHeader(tc.name, tc.value); !errors.Is(err, ErrBadHeader) {
			t.Errorf("NewStaticHeader(%q, %q) err = %v, want ErrBadHeader", tc.name, tc.value, err)
		} else if len(tc.value) >= 4 && strings.Contains(err.Error(), tc.value) {
			t.Errorf("error %q shows the value", err)
		}
	}
}

// req: D05
func FuzzD05_HeaderValue(f *testing.F) {
	for _, s := range []string{"v", "a\r\nb", "\x00", "Bearer abc", " x", "é"} {
		f.Add("X-Key", s)
	}
	f.Add("X\nKey", "v")
	f.Fuzz(func(t *testing.T, name, value string) {
		s, err := NewStaticHeader(name, value)
		if err != nil {
			return
		}
		h := http.Header{}
		if err := s.Apply(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		for k, vs := range h {
			for _, v := range append(vs, k) {
				for i := range len(v) {
					if c := v[i]; c < 0x20 || c == 0x7f || c > 0x7e {
						t.Fatalf("emitted byte %#x in %q", c, v)
					}
				}
			}
		}
	})
}
