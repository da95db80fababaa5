# The root of atq-example/locust-base (sourced by ../build-image.sh through
# ../../debian-image.sh, with ROOT, WORK, SUITE and MIRROR set): Debian's python3 and
# busybox-static (the local HTTP server the locustfiles hit), and Locust from PyPI in a
# virtual environment at /opt/locust. No atq files: those are the layer image/Dockerfile adds.

# debootstrap resolves the dependencies of --include itself: no second `apt-get update`.
di_debootstrap python3,python3-venv,busybox-static

di_log "pip install locust==$LOCUST_VERSION into /opt/locust"
chroot "$ROOT" /usr/bin/env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 sh -c "
    set -e
    python3 -m venv /opt/locust
    /opt/locust/bin/pip install -q 'locust==$LOCUST_VERSION'
    # pip and setuptools served the install only.
    /opt/locust/bin/pip uninstall -q -y pip setuptools
" > "$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log" >&2; exit 1; }
ln -s /opt/locust/bin/locust "$ROOT/usr/local/bin/locust"

# `httpd` and `nc` for the entrypoint and probes: busybox applets, where Debian has none.
for applet in httpd nc; do
    chroot "$ROOT" sh -c "command -v $applet" >/dev/null 2>&1 || ln -s /bin/busybox "$ROOT/usr/local/bin/$applet"
done

di_log "sanity checks inside the root"
chroot "$ROOT" /usr/local/bin/locust --version > "$WORK/locust-version.txt" 2>&1 \
    || { cat "$WORK/locust-version.txt" >&2; exit 1; }
grep -q "locust $LOCUST_VERSION" "$WORK/locust-version.txt" \
    || di_die "locust --version says $(cat "$WORK/locust-version.txt"), not $LOCUST_VERSION"
chroot "$ROOT" sh -c 'command -v getent && busybox httpd --help 2>&1 | head -1' > /dev/null \
    || di_die "getent or busybox httpd missing in the root"
