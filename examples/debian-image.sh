# shellcheck shell=sh
# Shared steps of the example images built without a registry (sourced, not run, by
# examples/jmeter/build-image.sh and examples/locust/build-image.sh).
#
# An example image is two layers under two tags:
#   BASE_IMAGE  a Debian root (debootstrap minbase + the tool's packages), made by the
#               example's image/root.sh and imported with `docker import`, with the image's
#               configuration (entrypoint, ports). Slow (a minute or two, mostly downloads);
#               rebuilt only when its recipe changed: the image carries the sha256 of its
#               inputs as the label io.atq.example.base-sha256.
#   IMAGE       FROM BASE_IMAGE plus the example's own files (entrypoint script, plans,
#               locustfiles) in one COPY: `docker build`, a couple of seconds, and a no-op
#               (the builder's cache) when no file changed.
# Editing an entrypoint or a plan therefore costs seconds, not a rebuild of the root.
#
# The caller sets DI_LIB (this file's path), DI_NAME (log prefix), BASE_IMAGE, IMAGE, SUITE,
# MIRROR, sources this file, then calls
#   di_args "$@"
#   di_base RECIPE INPUT... [-- docker-import-change...]
#   di_layer DEST=SRC...
# RECIPE is a shell file sourced with ROOT set to an empty directory (and WORK, a scratch
# directory beside it); it calls di_debootstrap and installs what the tool needs.

DI_FORCE=0
DI_START=$(date +%s)

di_log() { echo "[$DI_NAME $(date +%H:%M:%S)] $*"; }
di_die() { echo "$DI_NAME: $*" >&2; exit 1; }

# di_args "$@": --force (rebuild the base too) and --help (the caller's header comment).
di_args() {
    for arg in "$@"; do
        case $arg in
            --force) DI_FORCE=1 ;;
            -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
            *) di_die "unknown argument: $arg (try --help)" ;;
        esac
    done
}

# di_label IMAGE KEY: the value of an image's label; empty when the image or label is missing.
di_label() {
    v=$(docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true)
    [ "$v" = "<no value>" ] && v=
    echo "$v"
}

# di_image_id IMAGE: the image's id, empty when it does not exist.
di_image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# di_drop OLD_ID IMAGE: after a rebuild, remove the image IMAGE used to name (now untagged),
# unless something still uses it.
di_drop() {
    if [ -n "$1" ] && [ "$1" != "$(di_image_id "$2")" ]; then
        # Removing an image also removes its untagged parents: an old base may be gone already.
        docker rmi "$1" >/dev/null 2>&1 || [ -z "$(docker image inspect -f . "$1" 2>/dev/null)" ] \
            || di_log "previous ${2%%:*} ${1#sha256:} is still in use; kept"
    fi
}

# di_size IMAGE: its size in MB.
di_size() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1000/1000}'; }

# di_base RECIPE [INPUT...] [-- CHANGE...]: makes BASE_IMAGE from RECIPE unless it is up to
# date. INPUTs (versions) count as inputs too: changing one rebuilds the base. CHANGEs are
# `docker import --change` instructions (ENTRYPOINT, CMD, EXPOSE, WORKDIR); inputs as well.
di_base() {
    recipe=$1; shift
    inputs=
    while [ $# -gt 0 ] && [ "$1" != -- ]; do inputs="$inputs $1"; shift; done
    [ $# -gt 0 ] && shift
    sum=$( { cat "$DI_LIB" "$recipe"; printf '%s\n' "$SUITE" "$inputs" "$@"; } | sha256sum | cut -d' ' -f1)
    if [ "$DI_FORCE" = 0 ] && [ "$(di_label "$BASE_IMAGE" io.atq.example.base-sha256)" = "$sum" ]; then
        di_log "$BASE_IMAGE is up to date"
        return
    fi
    [ "$(id -u)" = 0 ] || di_die "building $BASE_IMAGE needs root (debootstrap, chroot, mount)"
    if ! command -v debootstrap >/dev/null 2>&1; then
        di_log "installing debootstrap"
        apt-get install -y debootstrap >/dev/null 2>&1 \
            || { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; }
    fi
    old=$(di_image_id "$BASE_IMAGE")
    WORK=${WORKDIR:-$(mktemp -d /var/tmp/atq-image-build.XXXXXX)}
    ROOT=$WORK/root
    mkdir -p "$WORK"
    trap di_cleanup EXIT
    trap 'exit 130' INT TERM

    # shellcheck disable=SC1090 # the example's image/root.sh
    . "$recipe"

    di_strip
    di_log "docker import -> $BASE_IMAGE (root is $(du -sh "$ROOT" | cut -f1))"
    for change in "$@"; do set -- "$@" --change "$change"; shift; done
    tar --numeric-owner -C "$ROOT" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "LABEL io.atq.example.base-sha256=$sum" \
        "$@" \
        -m "atq example base: Debian $SUITE root for $IMAGE" \
        - "$BASE_IMAGE" > /dev/null
    di_cleanup
    trap - EXIT INT TERM
    di_log "built $BASE_IMAGE in $(( $(date +%s) - DI_START ))s, $(di_size "$BASE_IMAGE")"
    # The old base is the parent of the old IMAGE: di_layer drops both.
    DI_OLD_BASE=$old
}

# di_layer DEST=SRC...: builds IMAGE FROM BASE_IMAGE plus each file or directory SRC
# (relative to the caller's directory, HERE) at /DEST, in one COPY (one layer: each build
# step costs ~2 s on fuse-overlayfs).
di_layer() {
    old=$(di_image_id "$IMAGE")
    ctx=$(mktemp -d /var/tmp/atq-image-layer.XXXXXX)
    for pair in "$@"; do
        dest=$ctx/root/${pair%%=*}
        mkdir -p "$(dirname "$dest")"
        cp -R "$HERE/${pair#*=}" "$dest"
    done
    # shellcheck disable=SC2016 # $BASE is the Dockerfile's, not the shell's
    printf 'ARG BASE\nFROM $BASE\nCOPY root/ /\n' > "$ctx/Dockerfile"
    # The CLI warns on stderr about the legacy builder: show its output only on failure.
    if ! out=$(docker build -q --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" "$ctx" 2>&1); then
        rm -rf "$ctx"
        echo "$out" >&2
        di_die "docker build of $IMAGE failed"
    fi
    rm -rf "$ctx"
    if [ "$old" = "$(di_image_id "$IMAGE")" ]; then
        di_log "$IMAGE is up to date ($(di_size "$IMAGE"))"
    else
        di_drop "$old" "$IMAGE"
        di_log "built $IMAGE in $(( $(date +%s) - DI_START ))s, $(di_size "$IMAGE")"
    fi
    di_drop "${DI_OLD_BASE:-}" "$BASE_IMAGE"
}

# di_debootstrap [PACKAGE,...]: a minimal root of $SUITE in $ROOT (plus the packages, if any),
# with apt sources, no docs or man pages, no daemons started, and the host's resolver.
# Downloaded packages are kept in DEBOOTSTRAP_CACHE (default /var/cache/atq-example-debootstrap;
# empty: none), checked against the mirror's index on reuse: the second example image built on
# a machine downloads only what the first did not (~15% of a minbase debootstrap's time here).
di_debootstrap() {
    cache=${DEBOOTSTRAP_CACHE-/var/cache/atq-example-debootstrap}
    [ -z "$cache" ] || mkdir -p "$cache"
    # Once (of about fifteen builds here) debootstrap failed to configure python3 five times
    # over and the same build passed when run again: one more try, from scratch, after
    # showing why (dpkg's own words are in the root's debootstrap/debootstrap.log).
    for try in 1 2; do
        di_log "debootstrap --variant=minbase $SUITE${1:+ --include=$1}"
        if debootstrap --variant=minbase ${cache:+--cache-dir="$cache"} ${1:+--include="$1"} \
            "$SUITE" "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1; then
            break
        fi
        tail -20 "$WORK/debootstrap.log" >&2
        tail -30 "$ROOT/debootstrap/debootstrap.log" >&2 2>/dev/null || true
        [ "$try" = 1 ] || di_die "debootstrap failed twice"
        di_log "debootstrap failed; trying once more from scratch"
        di_umount_all || di_die "something is still mounted under $ROOT"
        rm -rf "$ROOT"
    done
    cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
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
}

# di_mount_proc: /proc inside the root (a JRE's post-install runs java, which needs it).
# Unmounted by di_strip and on any exit.
di_mount_proc() { mount -t proc proc "$ROOT/proc"; }

di_umount_proc() {
    if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc" || umount -l "$ROOT/proc"; fi
}

# di_umount_all: unmounts what the build or debootstrap mounted in the root; fails if
# anything is still mounted under it (never rm -rf through a mount).
di_umount_all() {
    for m in proc sys dev/pts dev; do
        if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount "$ROOT/$m" || umount -l "$ROOT/$m"; fi
    done
    ! grep -q " $ROOT/" /proc/mounts
}

# Never leave anything mounted inside the root, whatever happened; then remove the work dir.
di_cleanup() {
    [ -n "${ROOT:-}" ] || return 0
    if ! di_umount_all; then
        echo "$DI_NAME: something is still mounted under $ROOT; not removing $WORK" >&2
        return 0
    fi
    rm -rf "$WORK"
}

# di_strip: drop apt caches and lists, docs, man pages, logs and the build's resolver.
di_strip() {
    di_log "stripping caches, docs and logs"
    chroot "$ROOT" apt-get clean
    di_umount_proc
    rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/debconf/*-old \
           "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/* \
           "$ROOT"/usr/share/lintian/* "$ROOT"/var/log/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* \
           "$ROOT"/root/.cache
    find "$ROOT/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
    find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    : > "$ROOT/etc/resolv.conf"
    rm -f "$ROOT/usr/sbin/policy-rc.d"
}
