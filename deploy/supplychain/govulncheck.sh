#!/usr/bin/env bash
# govulncheck on the whole module, against a vulnerability database built
# offline from the Go module proxy's golang.org/x/vulndb module (pinned
# below), with the project's toolchain. Fails on any reachable finding
# (govulncheck exits 3); findings in required modules that the code does
# not call are listed, not fatal. Run by .ci/test.
#
#   govulncheck.sh [report.json]
#   govulncheck.sh --binary <binary> <report.json>
#
# With a file name, also writes govulncheck's JSON report there (written
# first, whatever it finds), for `passerelle dossier --govulncheck`. With
# --binary, scans a built binary instead (-mode=binary: the symbols it
# holds, SECURITY.md J04), as the release job does.
set -euo pipefail
report="" binary=""
if [ "${1:-}" = --binary ]; then
	[ $# -eq 3 ] || { echo "usage: govulncheck.sh --binary <binary> <report.json>" >&2; exit 2; }
	binary=$(realpath -- "$2")
	shift 2
fi
[ $# -eq 0 ] || report=$(realpath -m -- "$1")
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018 # golang.org/x/vulndb, 2026-11-05
VULNDB_DATE=2026-11-05T23:49:57Z
GOVULNCHECK_VERSION=v1.9.0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$(cd "$work" && go mod init vulndb-fetch >/dev/null 2>&1 &&
	GOFLAGS= go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$src/data/osv" ] || { echo "govulncheck.sh: golang.org/x/vulndb@$VULNDB_VERSION not downloaded" >&2; exit 1; }
go run ./deploy/supplychain/vulndb -src "$src" -out "$work/db" -modified "$VULNDB_DATE"
GOFLAGS= GOBIN="$work/bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
if [ -n "$binary" ]; then
	"$work/bin/govulncheck" -db "file://$work/db" -mode binary -format json "$binary" >"$report"
	echo "govulncheck.sh: JSON report of $(basename "$binary") in $report"
	"$work/bin/govulncheck" -db "file://$work/db" -mode convert <"$report"
	exit 0 # reached only without a finding in the binary (set -e)
fi
if [ -n "$report" ]; then
	# One scan: the JSON report, then its text (and exit status) from it.
	GOFLAGS=-tags=nobadger,nomysql,nopgx "$work/bin/govulncheck" -db "file://$work/db" -format json ./... >"$report"
	echo "govulncheck.sh: JSON report in $report"
	"$work/bin/govulncheck" -db "file://$work/db" -mode convert <"$report"
	exit 0 # reached only without a reachable finding (set -e)
fi
GOFLAGS=-tags=nobadger,nomysql,nopgx "$work/bin/govulncheck" -db "file://$work/db" ./...
