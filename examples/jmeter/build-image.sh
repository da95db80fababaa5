#!/bin/sh
# Build atq-example/jmeter:2.13 without any image registry, from Debian packages:
# a minimal bookworm root (debootstrap --variant=minbase) with JMeter 2.13
# (`jmeter` + `jmeter-http`), a headless JRE, busybox-static (a local HTTP
# server for the plan to hit), the entrypoint and the plan, imported with
# `docker import`.
#
# Usage: ./build-image.sh [--force]
#   --force   rebuild even if the image already exists
# Environment:
#   IMAGE    image to build       (default atq-example/jmeter:2.13)
#   MIRROR   Debian mirror        (default http://deb.debian.org/debian)
#   SUITE    Debian suite         (default bookworm)
#   WORKDIR  where the chroot goes (default: a fresh dir under /var/tmp)
#
# Needs root (debootstrap, chroot, mount). Idempotent: returns at once when
# the image exists. Takes a few minutes, mostly downloading packages.
set -eu

IMAGE=${IMAGE:-atq-example/jmeter:2.13}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
# Bookworm's libxstream-java (1.4.20) rejects every JMeter 2.13 plan with
# ForbiddenClassException; bullseye's 1.4.15 works. Pinned by exact file name.
XSTREAM_DEB=libxstream-java_1.4.15-3+deb11u2_all.deb
XSTREAM_URL=${XSTREAM_URL:-$MIRROR/pool/main/libx/libxstream-java/$XSTREAM_DEB}

HERE=$(cd "$(dirname "$0")" && pwd)
FORCE=0
for arg in "$@"; do
    case $arg in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "[build-image $(date +%H:%M:%S)] $*"; }

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE already exists (use --force to rebuild)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "build-image.sh: must run as root (debootstrap, chroot, mount)" >&2
    exit 1
fi

START=$(date +%s)
OLD_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get install -y debootstrap >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; }
fi

WORK=${WORKDIR:-$(mktemp -d /var/tmp/atq-jmeter-build.XXXXXX)}
ROOT=$WORK/root
mkdir -p "$WORK"

cleanup() {
    # Never leave /proc mounted inside the chroot, whatever happened.
    if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc" || umount -l "$ROOT/proc"; fi
    if mountpoint -q "$ROOT/proc" 2>/dev/null; then
        echo "build-image.sh: $ROOT/proc is still mounted; not removing $WORK" >&2
        return
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "debootstrap --variant=minbase $SUITE into $ROOT"
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }

cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
# No daemons start inside the chroot; no docs, man pages or translations.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"
cat > "$ROOT/etc/dpkg/dpkg.cfg.d/01-atq-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# `jmeter` depends on `default-jre | java2-runtime`; both pull the full
# (GTK) JRE. A tiny local package stands in for them and depends on the
# headless JRE instead: JMeter in non-GUI mode needs nothing more.
SHIM=$ROOT/tmp/atq-shim
mkdir -p "$SHIM/DEBIAN"
cat > "$SHIM/DEBIAN/control" <<'EOF'
Package: atq-java-runtime-headless-shim
Version: 1.0
Architecture: all
Maintainer: atq examples <atq@localhost>
Depends: openjdk-17-jre-headless
Provides: java2-runtime, java5-runtime, java6-runtime, java7-runtime, java8-runtime, java-runtime
Description: lets jmeter install with a headless JRE only
EOF
chroot "$ROOT" dpkg-deb --build /tmp/atq-shim /tmp/atq-shim.deb >/dev/null

# The JRE's postinst scripts (ca-certificates-java) run java, which needs /proc.
mount -t proc proc "$ROOT/proc"

log "apt-get install jmeter jmeter-http openjdk-17-jre-headless busybox-static"
chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c '
    set -e
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        /tmp/atq-shim.deb openjdk-17-jre-headless jmeter jmeter-http busybox-static
' > "$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log" >&2; exit 1; }

log "replacing libxstream-java with bullseye's 1.4.15 jar"
curl -fsS -m 120 -o "$WORK/$XSTREAM_DEB" "$XSTREAM_URL"
dpkg-deb -x "$WORK/$XSTREAM_DEB" "$WORK/xstream"
# In both packages /usr/share/java/xstream.jar is the real file and the
# versioned names (and JMeter's lib/ links) are symlinks to it.
NEWJAR=$WORK/xstream/usr/share/java/xstream.jar
[ -f "$NEWJAR" ] && [ ! -L "$NEWJAR" ] || { echo "build-image.sh: no xstream.jar in $XSTREAM_DEB" >&2; exit 1; }
rm -f "$ROOT"/usr/share/java/xstream.jar "$ROOT"/usr/share/java/xstream-1.4.2*.jar
cp "$NEWJAR" "$ROOT/usr/share/java/xstream.jar"
ln -sfn xstream.jar "$ROOT/usr/share/java/xstream-1.4.15.jar"
# Whatever JMeter's classpath names must now be the 1.4.15 jar.
want=$(sha256sum < "$NEWJAR")
for j in $(chroot "$ROOT" sh -c 'ls /usr/share/jmeter/lib/*xstream*.jar /usr/share/java/*xstream*.jar 2>/dev/null'); do
    got=$(chroot "$ROOT" sh -c "sha256sum < \"\$(readlink -f $j)\"" 2>/dev/null || echo dangling)
    if [ "$got" != "$want" ]; then
        echo "build-image.sh: $j is not bullseye's xstream 1.4.15 (dangling or another version)" >&2
        exit 1
    fi
done
chroot "$ROOT" apt-mark hold libxstream-java >/dev/null

log "installing the entrypoint and the plan"
install -m 0755 "$HERE/image/atq-jmeter" "$ROOT/usr/local/bin/atq-jmeter"
# `nc` for the task's waitCommand probe (run in this image by default),
# `httpd` and `ip` for the entrypoint: busybox applets, where Debian has none.
for applet in nc httpd ip wget; do
    chroot "$ROOT" sh -c "command -v $applet" >/dev/null 2>&1 || ln -s /bin/busybox "$ROOT/usr/local/bin/$applet"
done
mkdir -p "$ROOT/plans"
install -m 0644 "$HERE/plan.jmx" "$ROOT/plans/plan.jmx"

log "sanity checks inside the root"
chroot "$ROOT" java -version > "$WORK/java-version.txt" 2>&1 || { cat "$WORK/java-version.txt" >&2; exit 1; }
chroot "$ROOT" sh -c 'command -v jmeter && command -v jmeter-server && command -v nc && busybox httpd --help 2>&1 | head -1' > /dev/null \
    || { echo "build-image.sh: jmeter, jmeter-server, nc or busybox httpd missing in the root" >&2; exit 1; }

log "stripping caches, docs and logs"
chroot "$ROOT" apt-get clean
umount "$ROOT/proc"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/debconf/*-old \
       "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/* \
       "$ROOT"/usr/share/lintian/* "$ROOT"/var/log/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* \
       "$ROOT"/usr/share/jmeter/docs "$ROOT"/usr/share/jmeter/printable_docs
find "$ROOT/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
: > "$ROOT/etc/resolv.conf"
rm -f "$ROOT/usr/sbin/policy-rc.d"

log "docker import -> $IMAGE (root is $(du -sh "$ROOT" | cut -f1))"
tar --numeric-owner -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'WORKDIR /tmp' \
    --change 'EXPOSE 1099 50000 60000' \
    --change 'ENTRYPOINT ["/usr/local/bin/atq-jmeter"]' \
    --change 'CMD ["worker"]' \
    -m "atq example: Apache JMeter 2.13 from Debian $SUITE" \
    - "$IMAGE" > /dev/null

# A --force rebuild leaves the previous image untagged: drop it unless in use.
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    docker rmi "$OLD_ID" >/dev/null 2>&1 || log "previous image ${OLD_ID#sha256:} is still in use; kept"
fi
END=$(date +%s)
log "built $IMAGE in $((END - START))s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1000/1000}')"
