package datapass

import (
	"strings"
	"testing"
)

// req: C11
func TestVerify(t *testing.T) {
	body := []byte(`{"event":"revoke","fired_at":1767261600}`)
	cur, prev := []byte("current-secret"), []byte("previous-secret")
	good := Sign(cur, body)
	cases := []struct {
		name    string
		header  string
		body    []byte
		secrets [][]byte
		want    bool
	}{
		{"valid", good, body, [][]byte{cur}, true},
		{"none", "", body, [][]byte{cur}, false},
		{"no prefix", strings.TrimPrefix(good, "sha256="), body, [][]byte{cur}, false},
		{"prefix in capitals", "SHA256=" + strings.TrimPrefix(good, "sha256="), body, [][]byte{cur}, false},
		{"hex in capitals", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, [][]byte{cur}, false},
		{"wrong secret", Sign([]byte("another"), body), body, [][]byte{cur}, false},
		{"altered body", good, []byte(`{"event":"approve","fired_at":1767261600}`), [][]byte{cur}, false},
		{"body with a trailing space", good, append(body, ' '), [][]byte{cur}, false},
		{"truncated signature", good[:len(good)-2], body, [][]byte{cur}, false},
		{"signature with a suffix", good + "00", body, [][]byte{cur}, false},
		{"previous secret during a rotation", Sign(prev, body), body, [][]byte{cur, prev}, true},
		{"previous secret after the rotation", Sign(prev, body), body, [][]byte{cur}, false},
		{"empty secret configured", Sign(nil, body), body, [][]byte{nil, {}}, false},
		{"sha1 header", "sha1=" + strings.TrimPrefix(good, "sha256=")[:40], body, [][]byte{cur}, false},
	}
	for _, tc := range cases {
		if got := Verify(tc.header, tc.body, tc.secrets...); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
}
