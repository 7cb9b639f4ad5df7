#!/bin/sh
# render-acl.sh TEMPLATE HASHES OUT: writes the ACL file Redis loads.
# TEMPLATE is users.acl: "user" lines, comment lines (#) and blank lines.
# HASHES holds one "name sha256hex" line per user, the SHA-256 of each
# user's password (init-secrets.sh writes it; Redis never sees the
# passwords themselves). Each user line but default's gets "#<hash>"; a
# user without a well-formed hash is an error, and nothing is written.
set -eu
umask 077
tpl=${1:?template} hashes=${2:?hashes file} out=${3:?output}
tmp="$out.tmp"
: >"$tmp"
while IFS= read -r line || [ -n "$line" ]; do
	case $line in
	'' | '#'*) continue ;;
	'user default '*) printf '%s\n' "$line" >>"$tmp" ;;
	'user '*)
		name=${line#user }
		name=${name%% *}
		hash=$(awk -v u="$name" '$1 == u { print $2; exit }' "$hashes")
		if [ ${#hash} -ne 64 ] || [ -n "$(printf '%s' "$hash" | tr -d '0-9a-f')" ]; then
			echo "render-acl.sh: no SHA-256 hash for user $name in $hashes" >&2
			rm -f "$tmp"
			exit 1
		fi
		printf '%s #%s\n' "$line" "$hash" >>"$tmp"
		;;
	*)
		echo "render-acl.sh: unexpected line in $tpl: $line" >&2
		rm -f "$tmp"
		exit 1
		;;
	esac
done <"$tpl"
mv "$tmp" "$out"
