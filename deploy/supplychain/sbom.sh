#!/usr/bin/env bash
# The binary's software bill of materials and its reproducibility:
#   - builds cmd/passerelle twice, in two directories, with the release flags
#     (CGO_ENABLED=0, -trimpath, -buildvcs=false, no sandbox) and checks the
#     two binaries are the same, byte for byte;
#   - writes `go version -m` of the binary and a CycloneDX SBOM of it
#     (cyclonedx-gomod, from the Go module proxy) into [out dir] (default:
#     a temporary one, printed), with the binary's SHA-256.
# The homologation dossier references these three files.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
CYCLONEDX_VERSION=v1.10.0
out=${1:-$(mktemp -d)}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build() {
	CGO_ENABLED=0 GOFLAGS= go build -trimpath -buildvcs=false -tags nobadger,nomysql,nopgx,nosandbox -o "$1" ./cmd/passerelle
}
build "$work/a"
GOCACHE="$work/cache" build "$work/b" # another cache: nothing reused
a=$(sha256sum <"$work/a" | cut -d' ' -f1)
b=$(sha256sum <"$work/b" | cut -d' ' -f1)
[ "$a" = "$b" ] || { echo "sbom.sh: two builds differ: $a $b" >&2; exit 1; }
echo "reproducible: two builds, one SHA-256 $a"
cp "$work/a" "$out/passerelle"
echo "$a  passerelle" >"$out/passerelle.sha256"
go version -m "$out/passerelle" >"$out/passerelle.buildinfo.txt"
GOFLAGS= GOBIN="$work/bin" go install "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$CYCLONEDX_VERSION"
"$work/bin/cyclonedx-gomod" bin -json -output "$out/passerelle.cdx.json" "$out/passerelle"
echo "SBOM: $out/passerelle.cdx.json ($(grep -c '"purl"' "$out/passerelle.cdx.json") components), build info: $out/passerelle.buildinfo.txt"
