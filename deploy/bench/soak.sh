#!/usr/bin/env bash
# Soak test: mixed Passerelle traffic for a long time at half the machine's
# maximum, with configuration reloads and habilitations rewrites, watching the
# gateway process for leaks (memory, goroutines, file descriptors) and for
# wrong answers.
#
#   bash deploy/bench/soak.sh [minutes]     # default 30; `soak.sh 1` is a smoke test
#
# Builds the binary and the load generator (deploy/bench/soak, vegeta as a
# library), then starts two processes of the binary as run.sh does, on
# loopback, without Redis: the gateway (deploy/bench/Caddyfile; admin
# localhost:2919, metrics on 127.0.0.1:9090) and the upstream
# (deploy/bench/upstream.Caddyfile: sandbox FranceConnect and provider). The
# gateway reads a copy of deploy/bench/habilitations.yaml in a temporary
# directory (BENCH_HABILITATIONS), which the load generator rewrites; the
# upstream logs its checktoken calls there (BENCH_CHECKTOKEN_LOG).
#
# BENCH_TLS=1: the load speaks TLS to the gateway, as in production
# (deploy/bench/Caddyfile.tls on :9443, a certificate made for the run;
# deploy/bench/report.sh runs the soak so).
#
# Then deploy/bench/soak (its package documentation has the details):
#   1. probes the maximum throughput of the mixed traffic for 15 s
#      (SOAK_PROBE, a Go duration), with SOAK_WORKERS (32) requests in flight;
#   2. sends the same mix, over at most SOAK_CONNECTIONS (64) connections as
#      a client's pool would, at half that rate (SOAK_FRACTION, 0.5; SOAK_RATE,
#      requests per second, sets it instead, to compare two builds) for
#      [minutes]: cached FranceConnect tokens (a new one every 20 s, below the
#      cache's ttl_cap of 30 s), new tokens, identité calls, unknown tokens
#      (401), a malformed recipient (422), and identité calls over the 5/s
#      quota of the habilitation bench-quota (429); reloads the gateway's
#      configuration every minute and rewrites the habilitations file every
#      2 minutes (same rights, one comment line more, atomically);
#   3. prints, every minute: requests and rate, status classes (2xx, 401, 422,
#      429, other), unexpected answers, p99 latency, and the gateway's RSS,
#      heap in use after a forced GC, goroutines and open file descriptors;
#   4. prints at the end the least-squares slope per minute of those four
#      figures (with first and last values), and two verdicts:
#        unexpected answers (a status other than the request's expected one,
#        or a transport error) = 0                                   → PASS
#        checktoken calls received by the sandbox FranceConnect (the
#        upstream logs each one, BENCH_CHECKTOKEN_LOG) = distinct
#        tokens sent, valid and unknown (one checktoken per token,
#        reloads and rewrites notwithstanding)                       → PASS
#      next to the gateway's caddy_passerelle_token_checks_total
#      {result="active",source="checktoken"} against the distinct valid
#      tokens, for reference: that metric counts requests answered from a
#      checktoken call, so it exceeds the calls when several requests wait
#      on the same call.
#      The slopes have no bar: on a long run, a leak shows as a steady
#      positive slope after the first minutes, not as noise around zero. The
#      slope over the second half of the run is printed too, past the ramp
#      while connection pools and the token cache (about rate × TTL entries)
#      fill. Goroutines and descriptors move with the connections each reload
#      opens and closes: judge their minima, not one sample.
#      Transport errors within 10 s of a reload are counted apart (at most 2
#      per reload): a keep-alive connection the replaced server closes, or,
#      with net.ipv4.tcp_migrate_req=0 (printed at the end), a connection
#      left in an old listening socket's accept queue (README.md, "Several
#      instances").
#
# Exits 0 once the verdicts are printed, whatever they are; 1 when something
# broke (a process died, a warm-up request failed, a reload failed). The
# harness's ports (deploy/bench/lib.sh: 9080-9086, 9090, 9443, 9444, 2919)
# must be free.
set -euo pipefail
[ -z "${BENCH_BIN:-}" ] || BENCH_BIN=$(realpath -- "$BENCH_BIN")
cd "$(dirname "$0")/../.."
minutes=${1:-30}
gw_conf=deploy/bench/Caddyfile
up_conf=deploy/bench/upstream.Caddyfile
base=http://127.0.0.1:9080 curl_tls=() soak_tls=()
[ "${BENCH_TLS:-0}" != 1 ] || { gw_conf=deploy/bench/Caddyfile.tls base=https://127.0.0.1:9443; }

# The gateway reads a copy of the habilitations, which the soak rewrites.
bench_prepare() {
	cp deploy/bench/habilitations.yaml "$work/habilitations.yaml"
	export BENCH_HABILITATIONS=$work/habilitations.yaml
	if [ "${BENCH_TLS:-0}" = 1 ]; then
		bench_tls_cert
		curl_tls=(--cacert "$BENCH_TLS_DIR/cert.pem") soak_tls=(-gateway "$base" -cacert "$BENCH_TLS_DIR/cert.pem")
	fi
}
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_start "$gw_conf" "$up_conf"
go build -tags nobadger,nomysql,nopgx -o "$work/soak" ./deploy/bench/soak
civility='nomNaissance=DUPONT&nomUsage=MARTIN&prenoms%5B%5D=Paul&prenoms%5B%5D=Louis&anneeDateNaissance=1962&moisDateNaissance=8&jourDateNaissance=24&sexeEtatCivil=M&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75107'
curl -sf "${curl_tls[@]}" -o /dev/null -H "Authorization: Bearer cnaf_qfv2~soak-warmup-$$" \
	"$base/v3/dss/quotient_familial/france_connect?recipient=13002526500013" || broke "warm-up (FranceConnect token)"
curl -sf "${curl_tls[@]}" -o /dev/null -H 'Authorization: Bearer sandbox_all_scopes' \
	"$base/v3/dss/quotient_familial/identite?recipient=13002526500013&$civility" || broke "warm-up (identité)"
curl -sf "${curl_tls[@]}" -o /dev/null -H 'Authorization: Bearer bench_quota_5_per_second' \
	"$base/v3/dss/quotient_familial/identite?recipient=21930048000015&$civility" || broke "warm-up (bench-quota habilitation)"
echo "gateway pid $gw_pid, upstream pid $up_pid"

status=0
"$work/soak" -pid "$gw_pid" -bin "$bin" -config "$gw_conf" -habilitations "$BENCH_HABILITATIONS" \
	-checktoken-log "$BENCH_CHECKTOKEN_LOG" -minutes "$minutes" "${soak_tls[@]}" \
	-probe "${SOAK_PROBE:-15s}" -workers "${SOAK_WORKERS:-32}" -connections "${SOAK_CONNECTIONS:-64}" \
	-fraction "${SOAK_FRACTION:-0.5}" -rate "${SOAK_RATE:-0}" || status=$?
kill -0 "$gw_pid" 2>/dev/null || broke "the gateway died"
kill -0 "$up_pid" 2>/dev/null || broke "the upstream died"
echo "net.ipv4.tcp_migrate_req=$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || echo '?');" \
	"log lines at level error: gateway $(grep -c '"level":"error"' "$work/gateway.log" || true), upstream $(grep -c '"level":"error"' "$work/upstream.log" || true)"
exit "$status"
