#!/usr/bin/env bash
# Builds a release into $DIST (default dist/release), offline:
#   podguard_<version>_<os>_<arch>            static binaries for linux/amd64, linux/arm64, darwin/arm64
#   podguard_<version>_<os>_<arch>.cdx.json   a CycloneDX SBOM of each binary's modules (cyclonedx-gomod, from its build info)
#   podguard-<version without v>.tgz          the Helm chart, appVersion = version
#   SHA256SUMS                                checksums of all of the above
# Usage: VERSION=v0.2.0 hack/release/release.sh   (make release VERSION=v0.2.0)
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="${VERSION:?set VERSION=vX.Y.Z}"
[[ "$VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "release: VERSION must look like v1.2.3 (is $VERSION)" >&2; exit 2; }
DIST="${DIST:-dist/release}"
COMMIT="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
PKG=podguard.dev/podguard/cmd/podguard/internal/versioncmd
rm -rf "$DIST" && mkdir -p "$DIST"
sbom=$(hack/tools.sh sbom-tool)
helm=$(hack/tools.sh helm-path)
for target in linux/amd64 linux/arm64 darwin/arm64; do
  os=${target%/*} arch=${target#*/}
  out="$DIST/podguard_${VERSION}_${os}_${arch}"
  echo "release: building $out" >&2
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w -X $PKG.version=$VERSION -X $PKG.commit=$COMMIT" -o "$out" ./cmd/podguard
  "$sbom" bin -json -version "$VERSION" -output "$out.cdx.json" "$out" >&2
done
"$helm" package charts/podguard --version "${VERSION#v}" --app-version "$VERSION" -d "$DIST" >&2
(cd "$DIST" && sha256sum -- * > SHA256SUMS)
echo "release: $VERSION in $DIST" >&2
ls -1 "$DIST"
