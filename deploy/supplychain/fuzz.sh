#!/usr/bin/env bash
# Every fuzz target of the repository, one after the other, for a time each
# (SECURITY.md J02): the short CI run (.ci/test: 40 000 executions each) and
# the long run before a release (10 minutes each):
#
#   bash deploy/supplychain/fuzz.sh 10m       # before a release
#
# A failing input is written by go test under the target's
# testdata/fuzz/<Fuzz…>/: commit it with the fix, so that every go test
# replays it. The committed seeds (testdata/fuzz) are replayed by every
# go test already.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
export GOFLAGS=${GOFLAGS:--tags=nobadger,nomysql,nopgx -mod=readonly}
fuzztime=${1:-10m}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "-- $target ($pkg)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done
