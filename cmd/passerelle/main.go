// Command passerelle is Caddy with its standard modules plus the Passerelle
// modules: the `passerelle` app and handler, the `passerelle_jwks` handler
// and, unless built with the `nosandbox` tag, the sandbox stand-ins.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/passerelle-gw/passerelle/caddyplugin"
)

func main() {
	caddycmd.Main()
}
