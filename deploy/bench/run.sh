#!/usr/bin/env bash
# Load harness: Passerelle with a cached FranceConnect token against Caddy's
# plain reverse_proxy to the same sandbox provider, same binary, same run,
# alternating rounds. Prints requests/s of each and their ratio.
#
#   bash deploy/bench/run.sh [rounds] [seconds] [connections]
#
# Needs wrk (Debian package; installed when missing). Traffic stays on
# loopback and every round is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} seconds=${2:-10} conns=${3:-32}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin=$(mktemp -d)/passerelle
CGO_ENABLED=0 go build -trimpath -tags nobadger,nomysql,nopgx -o "$bin" ./cmd/passerelle
"$bin" run --config deploy/bench/Caddyfile >/tmp/passerelle-bench.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:9081/api/v2/jwks && break; sleep 0.2; done

gw='http://127.0.0.1:9080/v3/dss/quotient_familial/france_connect?recipient=13002526500013'
plain='http://127.0.0.1:9082/v3/dss/quotient_familial/identite?nomNaissance=CNAF&prenoms%5B%5D=Georges&anneeDateNaissance=2002&moisDateNaissance=1&jourDateNaissance=1&sexeEtatCivil=M&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75002&recipient=13002526500013'
curl -sf -o /dev/null -H 'Authorization: Bearer cnaf_qfv2' "$gw" || { echo "gateway warm-up failed" >&2; exit 1; }
curl -sf -o /dev/null "$plain" || { echo "baseline warm-up failed" >&2; exit 1; }

rps() { wrk -t2 -c"$conns" -d"${seconds}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
plain_total=0 gw_total=0
for r in $(seq 1 "$rounds"); do
	p=$(rps "$plain")
	g=$(rps -H 'Authorization: Bearer cnaf_qfv2' "$gw")
	echo "round $r: reverse_proxy ${p} req/s, passerelle (cached token) ${g} req/s"
	plain_total=$(echo "$plain_total + $p" | bc -l) gw_total=$(echo "$gw_total + $g" | bc -l)
done
echo "ratio passerelle/reverse_proxy: $(echo "scale=3; $gw_total / $plain_total" | bc -l)"
