#!/usr/bin/env bash
# Load harness: Passerelle against Caddy's plain reverse_proxy to the same
# sandbox provider, in the same gateway process, alternating short rounds; then
# a reload check.
#
#   bash deploy/bench/run.sh [rounds] [seconds] [connections]    # default 10 5 32
#
# Two processes of the same freshly built binary, all on loopback (started
# by deploy/bench/lib.sh, shared with soak.sh):
#   gateway  (deploy/bench/Caddyfile, or BENCH_CADDYFILE): :9080 Passerelle,
#            :9082 the baseline plain reverse_proxy (with the provider's
#            credential header), :9090 metrics and probes, admin localhost:2919;
#   upstream (deploy/bench/upstream.Caddyfile): :9081 the sandbox FranceConnect
#            and the sandbox provider, `admin off`.
# BENCH_TLS=1: wrk and curl speak TLS to both sites (deploy/bench/Caddyfile.tls:
# :9443 Passerelle, :9444 the baseline, Caddy's default TLS policy, a
# certificate that deploy/bench/tlscert makes for the run); the rest unchanged.
# The gateway's CPU time (/proc/<pid>/stat) is thus the gateway's only (the
# sandbox FranceConnect fetches the gateway's JWKS at most once a minute, as
# FranceConnect caches a data provider's keys).
#
# Each round runs three wrk loads of [seconds] on [connections] connections:
#   (a) reverse_proxy: the baseline, an identité-style provider call on :9082;
#   (b) passerelle, cached token: the FranceConnect route with `Bearer cnaf_qfv2`
#       (checked once, then served from the in-process cache);
#   (c) mixed (deploy/bench/mixed.lua): 20 % identité calls with the sandbox
#       API token, 72 % the cached token, 8 % new tokens (`cnaf_qfv2~<unique>`,
#       one real checktoken each: JWE decrypt + JWS verify).
# and prints requests/s and gateway CPU µs per request of each, the ratios
# (b)/(a), the share of non-2xx answers of (c), and the resident memory
# (VmRSS) of both processes after the round. On a shared 2-core VM,
# neighbours move whole rounds; pairing adjacent rounds and taking the median
# of the per-round ratios cancels most of that.
#
# Then the reload check: one cached-token load of BENCH_RELOAD_SECONDS
# (default 15 s) during which the gateway's configuration is reloaded 10 times
# (`passerelle reload --force`, spaced through the round); it prints wrk's
# socket errors and non-2xx answers during the reloads, the gateway's RSS, and
# its heap in use after a forced GC (admin /debug/pprof/heap?gc=1, then
# memstats.HeapInuse from /debug/vars) against the same figure measured just
# before the reloads: 1 s after the load, then once the connections that the
# old configurations' reverse_proxy transports had in use at the reload have
# reached their idle timeout (2 min, Caddy's default) and closed, which the
# goroutine count shows. BENCH_SETTLE_SECONDS bounds that wait (default 180;
# 0: compare at 1 s).
#
# PASS/FAIL (printed; the script exits 0 either way unless something broke:
# a process died, a warm-up request failed, a reload failed):
#   median throughput ratio passerelle/reverse_proxy      ≥ 0.95
#   median CPU-per-request ratio reverse_proxy/passerelle ≥ 0.95
#   gateway RSS idle (right after start, before any load) ≤ 100 MiB
#   gateway peak RSS under load (sampled every 0.5 s)     ≤ 150 MiB
#   gateway RSS after the 10th reload, under load         ≤ 150 MiB
#   heap in use after GC, after the reloads (settled)     ≤ 1.5 × before
#
# Needs curl and wrk (Debian package; installed when missing). Every load is
# bounded in time; both processes are stopped on exit. The harness's ports
# (deploy/bench/lib.sh: 9080-9086, 9090, 9443, 9444, 2919) must be free
# (checked first: Caddy binds with SO_REUSEPORT, so a second instance would
# silently share the traffic).
set -euo pipefail
[ -z "${BENCH_BIN:-}" ] || BENCH_BIN=$(realpath -- "$BENCH_BIN")
cd "$(dirname "$0")/../.."
rounds=${1:-10} seconds=${2:-5} conns=${3:-32}
reload_seconds=${BENCH_RELOAD_SECONDS:-15}
reloads=10
gw_conf=${BENCH_CADDYFILE:-deploy/bench/Caddyfile}
up_conf=deploy/bench/upstream.Caddyfile
admin=localhost:2919
# BENCH_TLS=1: the callers (wrk, curl) speak TLS to both sites, as in
# production (SECURITY.md J06): deploy/bench/Caddyfile.tls, :9443 and
# :9444, Caddy's default TLS policy, a certificate made for the run.
scheme=http gw_port=9080 plain_port=9082 curl_tls=()
if [ "${BENCH_TLS:-0}" = 1 ]; then
	gw_conf=${BENCH_CADDYFILE:-deploy/bench/Caddyfile.tls}
	scheme=https gw_port=9443 plain_port=9444 curl_tls=(-k)
	bench_prepare() { bench_tls_cert; }
fi

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
wrk_pid=''
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_start "$gw_conf" "$up_conf"
alive() { kill -0 "$gw_pid" 2>/dev/null || broke "the gateway died"; kill -0 "$up_pid" 2>/dev/null || broke "the upstream died"; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# calc <awk expression> [decimals]: the value, rounded (default 1 decimal).
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
mib() { calc "$1 / 1024"; }
# heap_inuse: bytes of heap in use in the gateway after a forced GC.
heap_inuse() {
	curl -sf -o /dev/null "http://$admin/debug/pprof/heap?gc=1" || broke "admin /debug/pprof/heap"
	curl -sf "http://$admin/debug/vars" | grep -o '"HeapInuse":[0-9]*' | cut -d: -f2
}
# verdict <awk condition>: PASS or FAIL.
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
# checktoken_calls: the checktoken calls the upstream has answered so far.
checktoken_calls() { if [ -f "$BENCH_CHECKTOKEN_LOG" ]; then wc -l <"$BENCH_CHECKTOKEN_LOG"; else echo 0; fi; }
# goroutines: the gateway's goroutine count (admin goroutine profile).
goroutines() { curl -sf "http://$admin/debug/pprof/goroutine?debug=1" | awk 'NR == 1 {print $4}'; }

idle_kb=$(rss_kb "$gw_pid")
echo "gateway pid $gw_pid, idle RSS $(mib "$idle_kb") MiB; upstream pid $up_pid, RSS $(mib "$(rss_kb "$up_pid")") MiB"

gw="$scheme://127.0.0.1:$gw_port/v3/dss/quotient_familial/france_connect?recipient=13002526500013"
plain="$scheme://127.0.0.1:$plain_port/v3/dss/quotient_familial/identite?nomNaissance=CNAF&prenoms%5B%5D=Georges&anneeDateNaissance=2002&moisDateNaissance=1&jourDateNaissance=1&sexeEtatCivil=M&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75002&recipient=13002526500013"
identite="$scheme://127.0.0.1:$gw_port/v3/dss/quotient_familial/identite?recipient=13002526500013&nomNaissance=DUPONT&nomUsage=MARTIN&prenoms%5B%5D=Paul&prenoms%5B%5D=Louis&anneeDateNaissance=1962&moisDateNaissance=8&jourDateNaissance=24&sexeEtatCivil=M&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75107"
curl -sf "${curl_tls[@]}" -o /dev/null -H 'Authorization: Bearer cnaf_qfv2' "$gw" || broke "gateway warm-up (cached token)"
curl -sf "${curl_tls[@]}" -o /dev/null -H "Authorization: Bearer cnaf_qfv2~warmup-$$" "$gw" || broke "gateway warm-up (new token)"
curl -sf "${curl_tls[@]}" -o /dev/null -H 'Authorization: Bearer sandbox_all_scopes' "$identite" || broke "gateway warm-up (identité)"
curl -sf "${curl_tls[@]}" -o /dev/null "$plain" || broke "baseline warm-up"

# cpu_ticks: user+system clock ticks the gateway process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
hz=$(getconf CLK_TCK)
# load <duration> <wrk args…> runs one wrk load in the background, samples
# the gateway's RSS every 0.5 s, and sets: rps, cpu (gateway µs per request),
# reqs, non2xx, sockerr (wrk's socket errors, summed), peak_kb, and out (wrk's
# output), sockets (wrk's "Socket errors" line). Between `load_start` and
# `load_wait` the caller may act (reloads).
load_start() {
	local duration=$1
	shift
	cpu_before=$(cpu_ticks)
	peak_kb=0
	wrk -t2 -c"$conns" -d"${duration}s" "$@" >"$work/wrk.out" 2>&1 &
	wrk_pid=$!
}
sample() {
	local r
	r=$(rss_kb "$gw_pid")
	if [ "$r" -gt "$peak_kb" ]; then peak_kb=$r; fi
}
load_wait() {
	while kill -0 "$wrk_pid" 2>/dev/null; do sample; sleep 0.5; done
	wait "$wrk_pid" || broke "wrk failed: $(cat "$work/wrk.out")"
	wrk_pid=''
	local cpu_after
	cpu_after=$(cpu_ticks)
	out=$(cat "$work/wrk.out")
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses/ {print $5}')
	non2xx=${non2xx:-0}
	sockerr=$(echo "$out" | awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}')
	sockerr=${sockerr:-0}
	sockets=$(echo "$out" | awk '/Socket errors/ {sub(/^ *Socket errors: */, ""); print}')
	sockets=${sockets:-none}
	[ -n "$reqs" ] && [ "$reqs" -gt 0 ] || broke "wrk made no request: $out"
	cpu=$(calc "($cpu_after - $cpu_before) * 1000000 / $hz / $reqs")
	alive
}
load() {
	load_start "$@"
	load_wait
}

ratios=() cpu_ratios=() mixed_rps=() mixed_cpu=()
mixed_reqs=0 mixed_non2xx=0 load_peak_kb=0
for r in $(seq 1 "$rounds"); do
	load "$seconds" "$plain"
	p=$rps pc=$cpu
	((peak_kb > load_peak_kb)) && load_peak_kb=$peak_kb
	load "$seconds" -H 'Authorization: Bearer cnaf_qfv2' "$gw"
	g=$rps gc=$cpu
	((peak_kb > load_peak_kb)) && load_peak_kb=$peak_kb
	calls=$(checktoken_calls)
	load "$seconds" -s deploy/bench/mixed.lua "$scheme://127.0.0.1:$gw_port" -- "r$r-$$-$(date +%s)"
	calls=$(($(checktoken_calls) - calls))
	((peak_kb > load_peak_kb)) && load_peak_kb=$peak_kb
	mixed_rps+=("$rps") mixed_cpu+=("$cpu")
	mixed_reqs=$((mixed_reqs + reqs)) mixed_non2xx=$((mixed_non2xx + non2xx + sockerr))
	ratios+=("$(calc "$g / $p" 3)")
	cpu_ratios+=("$(calc "$pc / $gc" 3)")
	echo "round $r: reverse_proxy ${p} req/s (${pc} µs CPU/req), passerelle cached token ${g} req/s (${gc} µs CPU/req), ratio ${ratios[-1]}, CPU ratio ${cpu_ratios[-1]};" \
		"mixed ${rps} req/s (${cpu} µs CPU/req, non-2xx or errors $((non2xx + sockerr))/${reqs}, ${calls} checktoken calls);" \
		"RSS gateway $(mib "$(rss_kb "$gw_pid")") MiB (peak $(mib "$peak_kb")), upstream $(mib "$(rss_kb "$up_pid")") MiB"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio=$(median "${ratios[@]}") cpu_ratio=$(median "${cpu_ratios[@]}")
echo
echo "median throughput ratio passerelle/reverse_proxy: $ratio (≥ 0.95: $(verdict "$ratio >= 0.95"))"
echo "median CPU-per-request ratio reverse_proxy/passerelle: $cpu_ratio (≥ 0.95: $(verdict "$cpu_ratio >= 0.95"))"
echo "mixed traffic (20 % identité, 72 % cached token, 8 % new tokens): median $(median "${mixed_rps[@]}") req/s," \
	"median $(median "${mixed_cpu[@]}") µs gateway CPU/req, non-2xx or errors ${mixed_non2xx}/${mixed_reqs}" \
	"($(calc "100 * $mixed_non2xx / $mixed_reqs" 2) %)"
echo "RSS gateway: idle $(mib "$idle_kb") MiB (≤ 100: $(verdict "$idle_kb <= 100 * 1024")), peak under load $(mib "$load_peak_kb") MiB (≤ 150: $(verdict "$load_peak_kb <= 150 * 1024")), now $(mib "$(rss_kb "$gw_pid")") MiB;" \
	"upstream: now $(mib "$(rss_kb "$up_pid")") MiB, peak $(mib "$(hwm_kb "$up_pid")") MiB"

# Reload check.
heap_before=$(heap_inuse) goroutines_before=$(goroutines)
load_start "$reload_seconds" -H 'Authorization: Bearer cnaf_qfv2' "$gw"
gap=$(calc "$reload_seconds / ($reloads + 2)" 2)
failed=0
for i in $(seq 1 "$reloads"); do
	sleep "$gap"
	sample
	"$bin" reload --config "$gw_conf" --address "$admin" --force >>"$work/reload.log" 2>&1 || failed=$((failed + 1))
done
sample
after_kb=$(rss_kb "$gw_pid")
kill -0 "$wrk_pid" 2>/dev/null && under=under || under='NOT under (the round ended first; raise BENCH_RELOAD_SECONDS)'
load_wait
sleep 1
heap_now=$(heap_inuse) goroutines_now=$(goroutines)
# The old configurations' reverse_proxy transports close their idle
# connections when the configuration is replaced, but not the connections in
# use at that instant: those go back to the old pool and stay open (holding
# the old configuration) until the transport's idle timeout, 2 minutes by
# default. Wait for them to go (the goroutine count back to its level before
# the reloads) before comparing heaps; BENCH_SETTLE_SECONDS bounds the wait
# (default 180; 0 compares right away).
settle=${BENCH_SETTLE_SECONDS:-180} waited=0
heap_after=$heap_now goroutines_after=$goroutines_now
while [ "$waited" -lt "$settle" ] && [ "$goroutines_after" -gt $((goroutines_before + 5)) ]; do
	sleep 5
	waited=$((waited + 5))
	goroutines_after=$(goroutines)
done
[ "$waited" -gt 0 ] && heap_after=$(heap_inuse)
alive
echo
echo "reload check: $reloads reloads ($failed failed) during ${reload_seconds} s of cached-token load: ${rps} req/s," \
	"non-2xx ${non2xx} out of ${reqs} requests, socket errors: ${sockets}" \
	"(net.ipv4.tcp_migrate_req=$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || echo '?'); README.md, \"Several instances\")"
echo "  gateway RSS after the ${reloads}th reload, $under load: $(mib "$after_kb") MiB (≤ 150: $(verdict "$after_kb <= 150 * 1024"));" \
	"peak in the round $(mib "$peak_kb") MiB; now $(mib "$(rss_kb "$gw_pid")") MiB; process peak (VmHWM) $(mib "$(hwm_kb "$gw_pid")") MiB"
echo "  gateway heap in use after GC: single config $(mib $((heap_before / 1024))) MiB ($goroutines_before goroutines);" \
	"1 s after the load $(mib $((heap_now / 1024))) MiB ($goroutines_now goroutines, ×$(calc "$heap_now / $heap_before" 2));" \
	"${waited} s later $(mib $((heap_after / 1024))) MiB ($goroutines_after goroutines), ×$(calc "$heap_after / $heap_before" 2) (≤ 1.5: $(verdict "$heap_after <= 1.5 * $heap_before"))"
echo "  upstream RSS now $(mib "$(rss_kb "$up_pid")") MiB"
if [ "$failed" -gt 0 ]; then
	cat "$work/reload.log" >&2
	broke "$failed reloads failed"
fi
