package caddyplugin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "api-token",
		Short: "Mints an API bearer token for a habilitation",
		Long: `Mints a random API bearer token for a habilitation (identity and identifier
modalities, /api/introspect). It prints the token once, to hand to the
calling service over a secure channel, and the line to add to the
habilitation in the habilitations file: only the token's SHA-256 is stored.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.RunE = func(cmd *cobra.Command, _ []string) error { return mintAPIToken(cmd.OutOrStdout()) }
		},
	})
}

// mintAPIToken prints a new token ("pa_" + 32 random bytes, base64url: the
// RFC 6750 b64token grammar) and its digest line.
func mintAPIToken(w io.Writer) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	token := habilitation.APITokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	_, err := fmt.Fprintf(w, "token (give it to the calling service, it is not stored): %s\nadd to the habilitation:  api_token_sha256: [%q]\n",
		token, hex.EncodeToString(sum[:]))
	return err
}
