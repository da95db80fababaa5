# shellcheck shell=sh
# The root of atq-example/locust-base (sourced by ../build-image.sh through
# ../../debian-image.sh, with ROOT, WORK, SUITE and MIRROR set): Debian's python3 and
# busybox-static (the local HTTP server the locustfiles hit), and Locust from PyPI in a
# virtual environment at /opt/locust. No atq files: those are the layer image/Dockerfile adds.

# debootstrap resolves the dependencies of --include itself: no second `apt-get update`.
di_debootstrap python3,python3-venv,busybox-static

# pip runs in the root with a clean environment (the host's PIP_* settings, such as
# find-links to host paths, mean nothing there), the host's proxy and index settings, and
# the host's CA bundle: a machine behind a TLS-intercepting proxy trusts it, and the
# root's own bundle (certifi's, inside pip) would not. Removed again below.
CA_BUNDLE=${CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}
ca_env=
if [ -f "$CA_BUNDLE" ]; then
    cp "$CA_BUNDLE" "$ROOT/tmp/atq-build-ca.crt"
    ca_env=PIP_CERT=/tmp/atq-build-ca.crt
fi
di_log "pip install locust==$LOCUST_VERSION into /opt/locust"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-60}" \
    ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} ${PIP_EXTRA_INDEX_URL:+PIP_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL} \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} ${no_proxy:+no_proxy=$no_proxy} \
    $ca_env sh -c "
    set -e
    python3 -m venv /opt/locust
    /opt/locust/bin/pip install -q 'locust==$LOCUST_VERSION'
    # pip and setuptools served the install only.
    /opt/locust/bin/pip uninstall -q -y pip setuptools
" > "$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log" >&2; exit 1; }
rm -f "$ROOT/tmp/atq-build-ca.crt"
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
