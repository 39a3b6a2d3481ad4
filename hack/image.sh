#!/usr/bin/env bash
# Builds podguard's image where no Docker engine runs: the binary is built
# exactly as the Dockerfile's build stage builds it, then the Dockerfile's
# final stage (FROM scratch, COPY, USER, ENTRYPOINT) is built with buildah
# from those local files, its config is checked, and it is written as an
# OCI archive to dist/. The Dockerfile's build stage itself needs the
# golang image from a registry, which this machine cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)}"
COMMIT="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
IMAGE="${IMAGE:-ghcr.io/podguard/podguard:$VERSION}"
command -v buildah >/dev/null || { echo "hack/image.sh: buildah is needed (Debian: apt-get install buildah)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/out/etc/ssl/certs"
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
  -ldflags "-s -w -buildid= -X podguard.dev/podguard/cmd/podguard/internal/versioncmd.version=${VERSION} -X podguard.dev/podguard/cmd/podguard/internal/versioncmd.commit=${COMMIT}" \
  -o "$ctx/out/podguard" ./cmd/podguard
cp /etc/ssl/certs/ca-certificates.crt "$ctx/out/etc/ssl/certs/"
echo 'appuser:x:1000:1000:appuser:/:/sbin/nologin' > "$ctx/out/etc/passwd"
echo 'appuser:x:1000:' > "$ctx/out/etc/group"
# The Dockerfile's final stage, with the build stage's output already here.
sed -n '/^FROM scratch/,$p' Dockerfile | sed 's#COPY --from=build /out/#COPY out/#' > "$ctx/Containerfile"

export STORAGE_DRIVER=vfs
buildah --storage-driver vfs build --isolation chroot -f "$ctx/Containerfile" -t "$IMAGE" "$ctx" >&2
cfg=$(buildah --storage-driver vfs inspect --type image --format '{{.OCIv1.Config.User}}|{{.OCIv1.Config.Entrypoint}}|{{.OCIv1.Config.Cmd}}' "$IMAGE")
echo "image config: $cfg" >&2
[ "$cfg" = "1000:1000|[/podguard]|[serve]" ] || { echo "hack/image.sh: unexpected image config: $cfg" >&2; exit 1; }
mkdir -p dist
rm -f dist/podguard-image.tar
buildah --storage-driver vfs push "$IMAGE" "oci-archive:dist/podguard-image.tar:$IMAGE" >&2
# The image holds the binary, CA certificates, passwd and group: no shell.
files=$(buildah --storage-driver vfs from "$IMAGE" >/dev/null && c=$(buildah --storage-driver vfs containers -q | tail -1) && \
  m=$(buildah --storage-driver vfs mount "$c") && (cd "$m" && find . -type f | sort) ; buildah --storage-driver vfs rm --all >/dev/null)
echo "image files:" $files >&2
[ "$files" = "$(printf './etc/group\n./etc/passwd\n./etc/ssl/certs/ca-certificates.crt\n./podguard')" ] || { echo "hack/image.sh: unexpected files in the image" >&2; exit 1; }
echo "hack/image.sh: $IMAGE written to dist/podguard-image.tar ($(du -h dist/podguard-image.tar | cut -f1))" >&2
