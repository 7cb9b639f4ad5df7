#!/usr/bin/env bash
# Checks the deployment files of deploy/ (run by .ci/test):
#   - systemd/passerelle.service: `systemd-analyze security --offline=true`
#     exposure at most 2.0 (systemd is installed from Debian's packages when
#     missing);
#   - Caddyfile.production and k8s/base/Caddyfile: `passerelle audit
#     --fail-on low` passes, with the example habilitations (and, for
#     Kubernetes, a pod's environment); the README example
#     (Caddyfile.example) is reported critical (PA01, the sandbox);
#   - container/Dockerfile: a static, trimmed build on distroless nonroot,
#     no shell, OCI labels, the release's go build line (sbom.sh's) and a
#     build context without secrets (/.dockerignore): deploy/container's Go
#     test (docker is not needed to check that).
# Exits 1 on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3} # the project's toolchain (README)
fail() { echo "verify: $*" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq systemd >/dev/null
fi
exposure=$(systemd-analyze security --offline=true deploy/systemd/passerelle.service 2>/dev/null |
	awk '/Overall exposure level/ {print $(NF-2)}')
[ -n "$exposure" ] || fail "systemd-analyze gave no exposure level"
awk "BEGIN { exit !($exposure <= 2.0) }" || fail "systemd unit exposure $exposure > 2.0"
echo "systemd/passerelle.service: exposure $exposure (≤ 2.0)"

bin=$(mktemp -d)/passerelle
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -tags nobadger,nomysql,nopgx -o "$bin" ./cmd/passerelle
PASSERELLE_HABILITATIONS=deploy/production/habilitations.example.yaml \
	"$bin" audit --config deploy/Caddyfile.production --fail-on low >/dev/null ||
	fail "deploy/Caddyfile.production does not pass passerelle audit --fail-on low"
echo "Caddyfile.production: passerelle audit --fail-on low: no finding"
# The pod's environment (k8s/base/statefulset.yaml; POD_IP: an address the
# downward API could give).
POD_IP=10.244.1.7 PASSERELLE_INSTANCES=6 PASSERELLE_FD_CLIENT_ID=client-id PASSERELLE_DATAPASS_CLIENT_ID=client-id \
	PASSERELLE_HABILITATIONS=deploy/production/habilitations.example.yaml \
	"$bin" audit --config deploy/k8s/base/Caddyfile --fail-on low >/dev/null ||
	fail "deploy/k8s/base/Caddyfile does not pass passerelle audit --fail-on low"
echo "k8s/base/Caddyfile: passerelle audit --fail-on low: no finding"
set +e
out=$("$bin" audit --config Caddyfile.example 2>&1)
code=$?
set -e
[ "$code" = 1 ] && grep -q "PA01 CRITICAL" <<<"$out" || fail "the README example is not reported critical (exit $code)"
echo "Caddyfile.example: the sandbox reported critical"

df=deploy/container/Dockerfile
for want in 'CGO_ENABLED=0' '-trimpath' 'nosandbox' 'gcr.io/distroless/static-debian12:nonroot' \
	'USER nonroot:nonroot' 'org.opencontainers.image.source'; do
	grep -qF -- "$want" "$df" || fail "$df: no $want"
done
if grep -qiE '^(RUN|CMD|ENTRYPOINT).*(/bin/sh|bash)' <(sed -n '/^FROM gcr.io/,$p' "$df"); then
	fail "$df: the runtime stage uses a shell"
fi
out=$(go test -count=1 -run '^(TestBuildMatchesRelease|TestBuildContext)$' ./deploy/container/ 2>&1) || {
	echo "$out" >&2
	fail "$df: not sbom.sh's go build, or /.dockerignore lets a secret in (go test ./deploy/container/)"
}
echo "container/Dockerfile: static, trimmed, distroless nonroot, the release's build, no secret in its context"
# deploy/compose/ (compose file, its Caddyfile through passerelle audit, the
# Redis ACL against redis-server, the collector's allow-list, Prometheus):
# checked by its Go test, deploy/compose/compose_test.go, which .ci/test
# runs with every other (go test ./...); alone: go test ./deploy/compose/
