#!/usr/bin/env bash
# The load report of a release (SECURITY.md J06): the published method, run
# on one binary, its figures and verdicts written into <out dir>.
#
#   bash deploy/bench/report.sh <out dir>
#
# The release job (deploy/supplychain/release.sh) runs it on the release's
# binary and archives <out dir> with the release; run by hand, it measures
# the checkout's build, or BENCH_BIN. Writes:
#   load-report.md, load-report.json   the method and every scenario
#                                      (deploy/bench/loadreport: its package
#                                      documentation has the scenarios and
#                                      their bars)
#   soak.txt                           the soak's output, when one ran
#
# Method: the load harness's two processes on loopback (deploy/bench/lib.sh):
# the gateway, the binary measured (deploy/bench/Caddyfile.tls: Passerelle on
# :9443, Caddy's plain reverse_proxy on :9444, TLS with Caddy's default policy
# and a certificate made for the run), and the upstream, built from the
# checkout (sandbox FranceConnect and provider on :9081; a release leaves the
# sandbox out). The gateway reaches FranceConnect's checktoken through a relay
# of the load generator (127.0.0.1:9086), which it cuts and stalls for the
# outage. Every load is open-loop at LOAD_RATE requests a second (default
# 200); the runs last LOAD_DURATION (default 30s; the outage's phases at most
# 10 s, the reload storm at least 500 ms a reload and 4 s), the nominal
# scenario is repeated LOAD_REPEAT times (default 5) and the reload storm has
# LOAD_RELOADS reloads (default 50). First, unless LOAD_SOAK_MINUTES is 0, the
# soak (deploy/bench/soak.sh, over TLS, default 60 minutes, its SOAK_*
# settings) in its own processes; its verdicts go into the report. The
# defaults are the release method; a report made with less says it is a
# short run.
#
# Exits 0 when every bar holds, 3 when one does not (the report is written
# either way), 1 when something broke. LOAD_REVISION names the source
# revision of the binary (default: the checkout's when it builds the binary
# itself; "unknown" for a BENCH_BIN, unless given). Ports 9080-9086, 9090,
# 9443, 9444 and 2919 must be free.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: report.sh <out dir>" >&2; exit 2; }
out=$(realpath -m -- "$1")
[ -z "${BENCH_BIN:-}" ] || BENCH_BIN=$(realpath -- "$BENCH_BIN")
cd "$(dirname "$0")/../.."
mkdir -p "$out"
soak_minutes=${LOAD_SOAK_MINUTES:-60}
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}

soak_args=()
if [ "$soak_minutes" != 0 ]; then
	echo "== soak, $soak_minutes min (deploy/bench/soak.sh, over TLS)"
	env -u BENCH_FC_CHECKTOKEN_URL BENCH_TLS=1 bash deploy/bench/soak.sh "$soak_minutes" | tee "$out/soak.txt"
	soak_args=(-soak "$out/soak.txt" -soak-minutes "$soak_minutes")
fi

echo "== load scenarios (deploy/bench/loadreport)"
export BENCH_FC_CHECKTOKEN_URL=http://127.0.0.1:9086/api/v2/checktoken
bench_prepare() { bench_tls_cert; }
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_start deploy/bench/Caddyfile.tls deploy/bench/upstream.Caddyfile
go build -tags nobadger,nomysql,nopgx -o "$work/loadreport" ./deploy/bench/loadreport
revision=${LOAD_REVISION:-unknown}
if [ -z "${LOAD_REVISION:-}" ] && [ -z "${BENCH_BIN:-}" ]; then
	revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
	[ -z "$(git status --porcelain 2>/dev/null)" ] || revision="$revision (with uncommitted changes)"
fi
status=0
"$work/loadreport" -revision "$revision" -pid "$gw_pid" -bin "$bin" -config deploy/bench/Caddyfile.tls \
	-file "${BENCH_HABILITATIONS:-deploy/bench/habilitations.yaml}" -file deploy/bench/upstream.Caddyfile \
	-setup "mode sandbox; in-process token cache only (no Redis), ttl_cap 30s; checktoken through the relay ($BENCH_FC_CHECKTOKEN_URL), timeout 2s (the default), 32 in flight at most (the default); access logs off; audit trail sealed (passerelle_sealed) and batched to a file; quotas on, never biting; TLS certificate ECDSA P-256 made for the run" \
	-ttl-cap 30s -checktoken-timeout 2s -cacert "$BENCH_TLS_DIR/cert.pem" -checktoken-log "$BENCH_CHECKTOKEN_LOG" -gateway-log "$work/gateway.log" \
	-rate "${LOAD_RATE:-200}" -duration "${LOAD_DURATION:-30s}" -repeat "${LOAD_REPEAT:-5}" -reloads "${LOAD_RELOADS:-50}" \
	-out "$out" "${soak_args[@]}" || status=$?
kill -0 "$gw_pid" 2>/dev/null || broke "the gateway died"
kill -0 "$up_pid" 2>/dev/null || broke "the upstream died"
exit "$status"
