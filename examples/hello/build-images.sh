#!/bin/sh
# Build the images the hello example needs, with no registry:
#   atq-example/busybox:latest  FROM scratch + Debian's static busybox
# Idempotent and fast: does nothing when the image exists (--force rebuilds).
# Installs busybox-static with apt when /bin/busybox is missing or not static.
set -eu

IMAGE=${IMAGE:-atq-example/busybox:latest}
HERE=$(cd "$(dirname "$0")" && pwd)
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "build-images: $IMAGE already exists"
    exit 0
fi

BUSYBOX=/bin/busybox
is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }
if ! is_static "$BUSYBOX"; then
    echo "build-images: installing busybox-static"
    apt-get install -y busybox-static >/dev/null 2>&1 || {
        apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null
    }
fi
is_static "$BUSYBOX" || { echo "build-images: $BUSYBOX is not a static binary" >&2; exit 1; }

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
cp "$HERE/image/Dockerfile" "$CTX/Dockerfile"
cp "$BUSYBOX" "$CTX/busybox"
# The CLI warns on stderr about the legacy builder: show its output only on failure.
if ! out=$(docker build -q -t "$IMAGE" "$CTX" 2>&1); then
    echo "$out" >&2
    exit 1
fi
echo "build-images: built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1000/1000}'))"
