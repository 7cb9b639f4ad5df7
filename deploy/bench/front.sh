#!/usr/bin/env bash
# Load harness of the FranceConnect front (passerelle_front): a request of
# an established Cas 1 session proxied to a legacy app, against Caddy's plain
# reverse_proxy to the same app, in the same gateway process, alternating
# short rounds; then the callback's latency with userinfo and the provider
# each answering after 200 ms is measured by the Go benchmark
# (BenchmarkCallback in caddyplugin/front/e2e), not here.
#
#   bash deploy/bench/front.sh [rounds] [seconds] [connections]   # default 10 5 32
#   BENCH_HANDOFF="assertion headers" bash deploy/bench/front.sh   # both channels
#
# Processes (deploy/bench/lib.sh): the gateway (deploy/bench/Caddyfile) with
# the front on :9083 and the baseline on :9084, both proxying to the app on
# :9085, a static page served by the upstream process
# (deploy/bench/upstream.Caddyfile), which also plays FranceConnect's login
# side for the front. The harness logs in once (curl: the button, the
# sandbox identity page, Angela, the callback), then each round runs wrk on
# the baseline and on /espace-famille/ with the session cookie: every
# request carries the hand-off (the assertion by default, the front's own
# default; BENCH_HANDOFF to choose), signed once and reused.
#
# Prints requests/s and gateway CPU µs per request of both, the ratios, and
# their medians against the bar (≥ 0.90). Exits 0 unless something broke.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-10} seconds=${2:-5} conns=${3:-32}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
wrk_pid=''
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_start "${BENCH_CADDYFILE:-deploy/bench/Caddyfile}" deploy/bench/upstream.Caddyfile

front=http://127.0.0.1:9083 plain=http://127.0.0.1:9084
jar=$work/cookies
loc=$(curl -sf -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" -X POST -H "Origin: $front" \
	-d 'return_to=/espace-famille/&moment=login' "$front/.passerelle/fc/start") || broke "login start"
action=$(curl -sf -c "$jar" -b "$jar" "$loc" | grep -o 'action="[^"]*"' | head -1 | cut -d'"' -f2)
[ -n "$action" ] || broke "sandbox identity page"
callback=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" -d identity=angela "http://127.0.0.1:9081$action")
curl -s -o /dev/null -c "$jar" -b "$jar" "$callback"
ticket=$(awk '$6 == "passerelle" {print $7}' "$jar")
[ -n "$ticket" ] || broke "no session after the callback"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: passerelle=$ticket" "$front/espace-famille/")
[ "$status" = 200 ] || broke "the session's request answered $status"

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
# load <url> [wrk args…]: sets rps and cpu (gateway µs per request).
load() {
	local url=$1 before after reqs
	shift
	before=$(cpu_ticks)
	out=$(wrk -t2 -c"$conns" -d"${seconds}s" "$@" "$url") || broke "wrk failed"
	after=$(cpu_ticks)
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
	[ -z "$non2xx" ] || broke "$non2xx non-2xx answers on $url"
	cpu=$(calc "($after - $before) * 1000000 / $hz / $reqs")
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "hand-off channels: ${BENCH_HANDOFF:-assertion}"
ratios=() cpu_ratios=()
for r in $(seq 1 "$rounds"); do
	load "$plain/espace-famille/"
	p=$rps pc=$cpu
	load "$front/espace-famille/" -H "Cookie: passerelle=$ticket"
	ratios+=("$(calc "$rps / $p" 3)") cpu_ratios+=("$(calc "$pc / $cpu" 3)")
	echo "round $r: reverse_proxy $p req/s ($pc µs CPU/req), front $rps req/s ($cpu µs CPU/req), ratio ${ratios[-1]}, CPU ratio ${cpu_ratios[-1]}"
done
ratio=$(median "${ratios[@]}") cpu_ratio=$(median "${cpu_ratios[@]}")
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
echo
echo "median throughput ratio front/reverse_proxy: $ratio (≥ 0.90: $(verdict "$ratio >= 0.90"))"
echo "median CPU-per-request ratio reverse_proxy/front: $cpu_ratio"
