// Command passerelle is Caddy with its standard modules plus the Passerelle
// modules: the `passerelle` app and handler, the `passerelle_jwks` handler,
// the `passerelle_front` handler (FranceConnect login in front of a legacy
// app) and, unless built with the `nosandbox` tag, the sandbox stand-ins.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/passerelle-gw/passerelle/caddyplugin"
	_ "github.com/passerelle-gw/passerelle/caddyplugin/front"
)

func main() {
	caddycmd.Main()
}
