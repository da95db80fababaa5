#!/bin/sh
# Builds the images the integration tests run (there is no registry to pull from).
#
#   atq-test/busybox:latest   FROM scratch + Debian's static busybox (sh, nc, httpd, …)
#
# Idempotent: installs busybox-static if it is missing, and rebuilds only when the
# busybox binary changed (the image carries its sha256 as a label). Needs `docker`.
set -eu

IMAGE="${ATQ_TEST_BUSYBOX_IMAGE:-atq-test/busybox:latest}"
BUSYBOX=/bin/busybox

if ! [ -x "$BUSYBOX" ] || ! file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: installing busybox-static" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2; }
    fi
fi
[ -x "$BUSYBOX" ] || { echo "build.sh: $BUSYBOX missing: install Debian's busybox-static" >&2; exit 1; }

sum=$(sha256sum "$BUSYBOX" | cut -d' ' -f1)
have=$(docker image inspect --format '{{ index .Config.Labels "io.atq.test.busybox-sha256" }}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$sum" ]; then
    echo "build.sh: $IMAGE is up to date"
    exit 0
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$BUSYBOX" "$ctx/busybox"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/sbin", "/usr/sbin", "/tmp", "/etc", "/var/www"]
RUN ["/bin/busybox", "--install", "-s"]
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
LABEL io.atq.test.busybox-sha256="$sum"
CMD ["/bin/sh"]
DOCKERFILE
docker build -q -t "$IMAGE" "$ctx" >/dev/null
echo "build.sh: built $IMAGE"
