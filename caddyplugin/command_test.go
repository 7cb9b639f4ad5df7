package caddyplugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/bearer"
)

// TestMintAPIToken: a minted token fits the bearer grammar, and the line to
// paste holds its SHA-256, never the token.
func TestMintAPIToken(t *testing.T) {
	var out bytes.Buffer
	if err := mintAPIToken(&out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^token .*: (pa_\S+)\nadd to the habilitation:  api_token_sha256: \["([0-9a-f]{64})"\]\n$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
	if !bearer.ValidToken(m[1]) || len(m[1]) != 3+43 {
		t.Fatalf("token %q does not fit the bearer grammar", m[1])
	}
	sum := sha256.Sum256([]byte(m[1]))
	if m[2] != hex.EncodeToString(sum[:]) {
		t.Fatal("digest does not match the token")
	}
	var again bytes.Buffer
	_ = mintAPIToken(&again)
	if again.String() == out.String() {
		t.Fatal("two mints gave the same token")
	}
}
