# Shared by run.sh, soak.sh and report.sh, sourced from the repository root:
# the two processes of the load harness (gateway and upstream, two instances
# of one freshly built binary, on loopback) and their lifecycle.
#
#   bench_start <gateway Caddyfile> <upstream Caddyfile>
#
# refuses to start when a port of the harness is taken (Caddy binds with
# SO_REUSEPORT: a second instance would silently share the traffic), builds
# the binary into $work (a temporary directory removed on exit, with the
# processes $gw_pid, $up_pid and ${wrk_pid:-} stopped) and names it $bin;
# BENCH_BIN names another binary for the gateway instead, a release's, which
# leaves the upstream's sandbox stand-ins out (deploy/bench/report.sh). Then
# it points the upstream's checktoken log at $work (BENCH_CHECKTOKEN_LOG), makes
# the audit trail's seal key there (BENCH_AUDIT_SEAL_KEY),
# runs bench_prepare when the caller defines it ($work exists by then),
# starts the upstream then the gateway, and waits until both answer.
# broke <message> prints it with the end of both logs and exits 1.

work='' bin='' gw_pid='' up_pid=''
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3} # the project's toolchain (README)

bench_cleanup() {
	for p in ${wrk_pid:-} $gw_pid $up_pid; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "$work" ] || rm -rf "$work"
}

broke() {
	echo "BROKEN: $*" >&2
	tail -n 5 "$work/upstream.log" "$work/gateway.log" >&2 || true
	exit 1
}

# bench_wait_for <url> <what>: up to 20 s.
bench_wait_for() {
	for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done
	broke "$2 did not come up"
}

bench_start() {
	local gw_conf=$1 up_conf=$2 port
	for port in 9080 9081 9082 9083 9084 9085 9086 9090 9443 9444 2919; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "port $port is in use: stop the other instance first" >&2
			exit 1
		fi
	done
	work=$(mktemp -d)
	local up_bin=$work/passerelle
	bin=${BENCH_BIN:-$up_bin}
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	export BENCH_CHECKTOKEN_LOG=${BENCH_CHECKTOKEN_LOG:-$work/checktoken.log}
	# The audit trail's seal key (deploy/bench/Caddyfile), made for the run:
	# exported, for the reloads the scripts make too.
	export BENCH_AUDIT_SEAL_KEY=$work/audit-seal.key
	(umask 077 && head -c 32 /dev/urandom | base64 >"$BENCH_AUDIT_SEAL_KEY")
	CGO_ENABLED=0 go build -trimpath -tags nobadger,nomysql,nopgx -o "$up_bin" ./cmd/passerelle
	if declare -F bench_prepare >/dev/null; then bench_prepare; fi
	"$up_bin" run --config "$up_conf" >"$work/upstream.log" 2>&1 &
	up_pid=$!
	bench_wait_for http://127.0.0.1:9081/api/v2/jwks "the upstream"
	"$bin" run --config "$gw_conf" >"$work/gateway.log" 2>&1 &
	gw_pid=$!
	bench_wait_for http://127.0.0.1:9090/ready "the gateway"
}

# bench_tls_cert: a certificate for the TLS listeners of
# deploy/bench/Caddyfile.tls (BENCH_TLS=1), made in $work for the run:
# cert.pem, key.pem; BENCH_TLS_DIR names the directory. Call it from
# bench_prepare.
bench_tls_cert() {
	export BENCH_TLS_DIR=$work
	go run ./deploy/bench/tlscert "$work" || broke "deploy/bench/tlscert"
}
