#!/usr/bin/env bash
# staticcheck (honnef.co/go/tools, pinned below) on the whole module, tests
# included, with the project's toolchain and build tags: bugs, deprecated
# APIs, simplifications and style checks beyond go vet (SECURITY.md J01).
# Fails on any finding. Run by .ci/test.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
STATICCHECK_VERSION=v0.8.2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
GOFLAGS= GOBIN="$work/bin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
GOFLAGS=-mod=readonly "$work/bin/staticcheck" -tags nobadger,nomysql,nopgx ./...
