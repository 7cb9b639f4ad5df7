#!/usr/bin/env bash
# Load harness: Passerelle with a cached FranceConnect token against Caddy's
# plain reverse_proxy to the same sandbox provider, same binary, same run,
# alternating short rounds. Prints, per round, requests/s of each and the
# gateway process's CPU time per request (from /proc), then the median of
# the per-round ratios: on a shared 2-core VM, neighbours move whole rounds,
# and pairing adjacent rounds then taking the median cancels most of that.
#
#   bash deploy/bench/run.sh [rounds] [seconds] [connections]
#
# BENCH_CADDYFILE names another configuration with the same sites (default
# deploy/bench/Caddyfile), to compare logging or quota settings.
#
# Needs wrk (Debian package; installed when missing). Traffic stays on
# loopback and every round is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-10} seconds=${2:-5} conns=${3:-32}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin=$(mktemp -d)/passerelle
CGO_ENABLED=0 go build -trimpath -tags nobadger,nomysql,nopgx -o "$bin" ./cmd/passerelle
"$bin" run --config "${BENCH_CADDYFILE:-deploy/bench/Caddyfile}" >/tmp/passerelle-bench.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:9081/api/v2/jwks && break; sleep 0.2; done

gw='http://127.0.0.1:9080/v3/dss/quotient_familial/france_connect?recipient=13002526500013'
plain='http://127.0.0.1:9082/v3/dss/quotient_familial/identite?nomNaissance=CNAF&prenoms%5B%5D=Georges&anneeDateNaissance=2002&moisDateNaissance=1&jourDateNaissance=1&sexeEtatCivil=M&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75002&recipient=13002526500013'
curl -sf -o /dev/null -H 'Authorization: Bearer cnaf_qfv2' "$gw" || { echo "gateway warm-up failed" >&2; exit 1; }
curl -sf -o /dev/null "$plain" || { echo "baseline warm-up failed" >&2; exit 1; }

# cpu_ticks: user+system clock ticks the gateway process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
# run prints "<req/s> <gateway CPU µs per request>" for one wrk round.
run() {
	local before after out reqs
	before=$(cpu_ticks)
	out=$(wrk -t2 -c"$conns" -d"${seconds}s" "$@")
	after=$(cpu_ticks)
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "scale=1; ($after - $before) * 1000000 / $hz / $reqs" | bc -l)"
}
ratios=() cpu_ratios=()
for r in $(seq 1 "$rounds"); do
	read -r p pc < <(run "$plain")
	read -r g gc < <(run -H 'Authorization: Bearer cnaf_qfv2' "$gw")
	ratios+=("$(echo "scale=3; $g / $p" | bc -l)")
	cpu_ratios+=("$(echo "scale=3; $pc / $gc" | bc -l)")
	echo "round $r: reverse_proxy ${p} req/s (${pc} µs CPU/req), passerelle cached token ${g} req/s (${gc} µs CPU/req), ratio ${ratios[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median throughput ratio passerelle/reverse_proxy: $(median "${ratios[@]}")"
echo "median CPU-per-request ratio reverse_proxy/passerelle: $(median "${cpu_ratios[@]}")"
