# shellcheck shell=sh
# The root of atq-example/jmeter-base (sourced by ../build-image.sh through
# ../../debian-image.sh, with ROOT, WORK, SUITE and MIRROR set): Debian's jmeter 2.13 +
# jmeter-http, a headless JRE, bullseye's xstream jar, and busybox applets. No atq files:
# those are the layer image/Dockerfile adds.

# Bookworm's libxstream-java (1.4.20) rejects every JMeter 2.13 plan with
# ForbiddenClassException; bullseye's 1.4.15 works. Pinned by exact file name.
XSTREAM_DEB=libxstream-java_1.4.15-3+deb11u2_all.deb
XSTREAM_URL=${XSTREAM_URL:-$MIRROR/pool/main/libx/libxstream-java/$XSTREAM_DEB}

di_debootstrap

# `jmeter` depends on `default-jre | java2-runtime`; both pull the full
# (GTK) JRE. A tiny local package stands in for them and depends on the
# headless JRE instead: JMeter in non-GUI mode needs nothing more.
SHIM=$ROOT/tmp/atq-shim
mkdir -p "$SHIM/DEBIAN"
cat > "$SHIM/DEBIAN/control" <<'CONTROL'
Package: atq-java-runtime-headless-shim
Version: 1.0
Architecture: all
Maintainer: atq examples <atq@localhost>
Depends: openjdk-17-jre-headless
Provides: java2-runtime, java5-runtime, java6-runtime, java7-runtime, java8-runtime, java-runtime
Description: lets jmeter install with a headless JRE only
CONTROL
chroot "$ROOT" dpkg-deb --build /tmp/atq-shim /tmp/atq-shim.deb >/dev/null

# The JRE's postinst scripts (ca-certificates-java) run java, which needs /proc.
di_mount_proc

di_log "apt-get install jmeter jmeter-http openjdk-17-jre-headless busybox-static"
chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c '
    set -e
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        /tmp/atq-shim.deb openjdk-17-jre-headless jmeter jmeter-http busybox-static
' > "$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log" >&2; exit 1; }

di_log "replacing libxstream-java with bullseye's 1.4.15 jar"
curl -fsS -m 120 -o "$WORK/$XSTREAM_DEB" "$XSTREAM_URL"
dpkg-deb -x "$WORK/$XSTREAM_DEB" "$WORK/xstream"
# In both packages /usr/share/java/xstream.jar is the real file and the
# versioned names (and JMeter's lib/ links) are symlinks to it.
NEWJAR=$WORK/xstream/usr/share/java/xstream.jar
if [ ! -f "$NEWJAR" ] || [ -L "$NEWJAR" ]; then di_die "no xstream.jar in $XSTREAM_DEB"; fi
rm -f "$ROOT"/usr/share/java/xstream.jar "$ROOT"/usr/share/java/xstream-1.4.2*.jar
cp "$NEWJAR" "$ROOT/usr/share/java/xstream.jar"
ln -sfn xstream.jar "$ROOT/usr/share/java/xstream-1.4.15.jar"
# Whatever JMeter's classpath names must now be the 1.4.15 jar.
want=$(sha256sum < "$NEWJAR")
for j in $(chroot "$ROOT" sh -c 'ls /usr/share/jmeter/lib/*xstream*.jar /usr/share/java/*xstream*.jar 2>/dev/null'); do
    got=$(chroot "$ROOT" sh -c "sha256sum < \"\$(readlink -f $j)\"" 2>/dev/null || echo dangling)
    [ "$got" = "$want" ] || di_die "$j is not bullseye's xstream 1.4.15 (dangling or another version)"
done
chroot "$ROOT" apt-mark hold libxstream-java >/dev/null

# `nc` for the task's waitCommand probe (run in this image by default),
# `httpd` and `ip` for the entrypoint: busybox applets, where Debian has none.
for applet in nc httpd ip wget; do
    chroot "$ROOT" sh -c "command -v $applet" >/dev/null 2>&1 || ln -s /bin/busybox "$ROOT/usr/local/bin/$applet"
done

di_log "sanity checks inside the root"
chroot "$ROOT" java -version > "$WORK/java-version.txt" 2>&1 || { cat "$WORK/java-version.txt" >&2; exit 1; }
chroot "$ROOT" sh -c 'command -v jmeter && command -v jmeter-server && command -v nc && busybox httpd --help 2>&1 | head -1' > /dev/null \
    || di_die "jmeter, jmeter-server, nc or busybox httpd missing in the root"
rm -rf "$ROOT"/usr/share/jmeter/docs "$ROOT"/usr/share/jmeter/printable_docs
