#!/usr/bin/env bash
# govulncheck on the whole module, against a vulnerability database built
# offline from the Go module proxy's golang.org/x/vulndb module (pinned
# below), with the project's toolchain. Fails on any reachable finding
# (govulncheck exits 3); findings in required modules that the code does
# not call are listed, not fatal. Run by .ci/test.
#
#   govulncheck.sh [report.json] [--binary <binary> <binary-report.json>]
#
# With a file name, also writes govulncheck's JSON report there (written
# first, whatever it finds), for `passerelle dossier --govulncheck`. With
# --binary, also scans a built binary (-mode=binary: the symbols it holds,
# SECURITY.md J04) into its own report, failing on any vulnerable symbol,
# as the release job does: one database and one govulncheck for both.
set -euo pipefail
report="" binary="" binary_report=""
while [ $# -gt 0 ]; do
	case $1 in
	--binary)
		[ $# -ge 3 ] || { echo "usage: govulncheck.sh [report.json] [--binary <binary> <binary-report.json>]" >&2; exit 2; }
		binary=$(realpath -- "$2") binary_report=$(realpath -m -- "$3")
		shift 3
		;;
	*)
		report=$(realpath -m -- "$1")
		shift
		;;
	esac
done
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
	"$work/bin/govulncheck" -db "file://$work/db" -mode binary -format json "$binary" >"$binary_report"
	echo "govulncheck.sh: JSON report of $(basename "$binary") in $binary_report"
	"$work/bin/govulncheck" -db "file://$work/db" -mode convert <"$binary_report" # fails on a vulnerable symbol (set -e)
fi
if [ -n "$report" ]; then
	# One scan: the JSON report, then its text (and exit status) from it.
	GOFLAGS=-tags=nobadger,nomysql,nopgx "$work/bin/govulncheck" -db "file://$work/db" -format json ./... >"$report"
	echo "govulncheck.sh: JSON report in $report"
	"$work/bin/govulncheck" -db "file://$work/db" -mode convert <"$report"
	exit 0 # reached only without a reachable finding (set -e)
fi
GOFLAGS=-tags=nobadger,nomysql,nopgx "$work/bin/govulncheck" -db "file://$work/db" ./...
