#!/usr/bin/env bash
# init-secrets.sh [DIR]: creates the secrets deploy/compose generates
# itself, in DIR (default: secrets/ beside this script), with the owner and
# mode each container needs; never overwrites a file that exists. Then
# lists the secrets only the collectivité can provide (README.md).
#
#   random values (64 base64url characters): cache-secret, pseudonym-key,
#     audit-seal-key, redis-password (the gateways' Redis user), redis-replica-password,
#     redis-sentinel-password, sentinel-peer-password, grafana-admin-password;
#   redis-acl-hashes: "user sha256" of the three Redis users' passwords
#     (the Redis nodes get the hashes, never the gateways' password);
#   an internal CA, name-constrained to passerelle.internal (internal-ca;
#     its key in ca/internal-ca.key: move it off the host once the
#     certificates are issued), and its certificates, valid 825 days:
#     redis-tls-* (redis.passerelle.internal: every Redis node and Sentinel),
#     collector-tls-* (collector.passerelle.internal), metrics-tls-*
#     (metrics, gateway-1 and gateway-2 .passerelle.internal: the gateways'
#     internal listener).
#
# Owners (run as root, or chown afterwards as printed): the gateways
# 65532, Redis and Sentinels 999:1000, the collector 10001, Grafana 472;
# files mode 600 (the gateway refuses a secret file readable by others),
# internal-ca 644. Needs openssl.
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")" && pwd)/secrets"}
mkdir -p "$dir/ca"
chmod 700 "$dir/ca"
cd "$dir"
umask 077

own() { # own UID:GID MODE FILE...
	local owner=$1 mode=$2
	shift 2
	chmod "$mode" "$@"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$owner" "$@"
	else
		echo "as root: chown $owner $*" >&2
	fi
}
random() { # random FILE OWNER
	[ -e "$1" ] && return 0
	openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n' >"$1"
	own "$2" 600 "$1"
}

random cache-secret 65532:65532
random pseudonym-key 65532:65532
random audit-seal-key 65532:65532
random redis-password 65532:65532
random redis-replica-password 999:1000
random redis-sentinel-password 999:1000
random sentinel-peer-password 999:1000
random grafana-admin-password 472:0

if [ ! -e redis-acl-hashes ]; then
	for pair in passerelle:redis-password replica:redis-replica-password sentinel:redis-sentinel-password; do
		printf '%s %s\n' "${pair%%:*}" "$(tr -d '\n' <"${pair#*:}" | openssl dgst -sha256 -r | cut -d' ' -f1)"
	done >redis-acl-hashes
	own 999:1000 600 redis-acl-hashes
fi

if [ ! -e internal-ca ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -days 3650 \
		-keyout ca/internal-ca.key -out internal-ca -subj "/CN=Passerelle internal CA" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "nameConstraints=critical,permitted;DNS:passerelle.internal" 2>/dev/null
	chmod 644 internal-ca
fi

issue() { # issue NAME OWNER DNS...
	local name=$1 owner=$2 san
	shift 2
	[ -e "$name-tls-cert" ] && return 0
	[ -r ca/internal-ca.key ] || { echo "init-secrets: ca/internal-ca.key is gone: cannot issue $name" >&2; return 1; }
	san=$(printf 'DNS:%s,' "$@")
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
		-keyout "$name-tls-key" -out "$name.csr" -subj "/CN=$1" 2>/dev/null
	printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' \
		"${san%,}" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA internal-ca -CAkey ca/internal-ca.key -set_serial "0x$(openssl rand -hex 16)" \
		-days 825 -extfile "$name.ext" -out "$name-tls-cert" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
	own "$owner" 600 "$name-tls-key"
	own "$owner" 644 "$name-tls-cert"
}
issue redis 999:1000 redis.passerelle.internal
issue collector 10001:10001 collector.passerelle.internal
issue metrics 65532:65532 metrics.passerelle.internal gateway-1.passerelle.internal gateway-2.passerelle.internal

missing=0
for f in fc-client-secret fc-decryption-key cnav-authorization public-tls-cert public-tls-key; do
	if [ ! -s "$f" ]; then
		echo "to provide: $dir/$f (README.md), owner 65532:65532, mode 600" >&2
		missing=1
	fi
done
exit "$missing"
