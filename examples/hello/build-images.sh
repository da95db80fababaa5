#!/bin/sh
# Builds a busybox image with no registry: FROM scratch + Debian's static busybox
# (image/Dockerfile). Default tag atq-example/busybox:latest; IMAGE=... picks another
# (tests/images/build.sh builds atq-test/busybox:latest with it).
# Idempotent and fast: does nothing when the image exists and was built from this
# busybox binary (the image carries its sha256 as a label); --force rebuilds.
# Installs busybox-static with apt when /bin/busybox is missing or not static.
set -eu

IMAGE=${IMAGE:-atq-example/busybox:latest}
HERE=$(cd "$(dirname "$0")" && pwd)
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

BUSYBOX=/bin/busybox
is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }
if ! is_static "$BUSYBOX"; then
    echo "build-images: installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null 2>&1 || {
        apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
    }
fi
is_static "$BUSYBOX" || { echo "build-images: $BUSYBOX is not a static binary" >&2; exit 1; }

sum=$(sha256sum "$BUSYBOX" | cut -d' ' -f1)
have=$(docker image inspect --format '{{ index .Config.Labels "io.atq.busybox-sha256" }}' "$IMAGE" 2>/dev/null || true)
if [ "$FORCE" = 0 ] && [ "$have" = "$sum" ]; then
    echo "build-images: $IMAGE is up to date"
    exit 0
fi

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
cp "$HERE/image/Dockerfile" "$CTX/Dockerfile"
cp "$BUSYBOX" "$CTX/busybox"
# The CLI warns on stderr about the legacy builder: show its output only on failure.
if ! out=$(docker build -q --label "io.atq.busybox-sha256=$sum" -t "$IMAGE" "$CTX" 2>&1); then
    echo "$out" >&2
    exit 1
fi
echo "build-images: built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1000/1000}'))"
