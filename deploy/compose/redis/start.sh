#!/bin/sh
# start.sh primary|replica|sentinel: starts one Redis node or Sentinel of
# deploy/compose on a read-only root filesystem. It renders the
# configuration, passwords included, into the tmpfs $RUN_DIR (/data, mode
# 700, the node's user only) and execs the server on it.
#
# Environment: ANNOUNCE_HOST (this container's name on the data network),
# PRIMARY_HOST (the first primary, for a replica). Secrets (/run/secrets):
#   redis-acl-hashes        "user sha256" lines: the ACL passwords (nodes)
#   redis-replica-password  the replica user's password (masterauth; nodes)
#   redis-sentinel-password the sentinel user's password (auth-pass; Sentinels)
#   sentinel-peer-password  the Sentinels' password between themselves
set -eu
umask 077
role=${1:?usage: start.sh primary|replica|sentinel}
conf=${CONF_DIR:-/etc/redis}
secrets=${SECRETS_DIR:-/run/secrets}
run=${RUN_DIR:-/data}
host=${ANNOUNCE_HOST:?ANNOUNCE_HOST: this container name}

fail() {
	echo "start.sh: $*" >&2
	exit 1
}
# secret NAME: the secret's value, without its final newline; only
# characters a configuration line carries as they are.
secret() {
	[ -r "$secrets/$1" ] || fail "secret $1 missing or unreadable"
	v=$(tr -d '\r\n' <"$secrets/$1")
	case $v in
	'' | *[!A-Za-z0-9_.~+/=-]*) fail "secret $1: empty, or characters other than [A-Za-z0-9_.~+/=-]" ;;
	esac
	printf '%s' "$v"
}
server=$(command -v valkey-server || command -v redis-server) || fail "no redis-server"

case $role in
primary | replica)
	sh "$conf/render-acl.sh" "$conf/users.acl" "$secrets/redis-acl-hashes" "$run/users.acl"
	{
		cat "$conf/redis.conf"
		printf 'replica-announce-ip %s\n' "$host"
		printf 'masteruser replica\nmasterauth %s\n' "$(secret redis-replica-password)"
		if [ "$role" = replica ]; then
			printf 'replicaof %s 6379\n' "${PRIMARY_HOST:?PRIMARY_HOST: the primary}"
		fi
	} >"$run/redis.conf"
	exec "$server" "$run/redis.conf"
	;;
sentinel)
	peer=$(secret sentinel-peer-password)
	peer_hash=$(printf '%s' "$peer" | sha256sum | cut -d' ' -f1)
	{
		cat "$conf/sentinel.conf"
		printf 'sentinel announce-ip %s\n' "$host"
		printf 'sentinel auth-user passerelle sentinel\nsentinel auth-pass passerelle %s\n' "$(secret redis-sentinel-password)"
		printf 'sentinel sentinel-user sentinel-peer\nsentinel sentinel-pass %s\n' "$peer"
		printf 'user sentinel-peer on #%s allchannels +@all\n' "$peer_hash"
	} >"$run/sentinel.conf"
	exec "$server" "$run/sentinel.conf" --sentinel
	;;
*) fail "unknown role $role" ;;
esac
