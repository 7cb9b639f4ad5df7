//go:build !nosandbox

package main

// The sandbox stand-ins (FranceConnect and data providers). A release build
// leaves them out with `-tags nosandbox` (SECURITY.md H03).
import _ "github.com/passerelle-gw/passerelle/caddyplugin/sandbox"
