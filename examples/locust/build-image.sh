#!/bin/sh
# Builds atq-example/locust:2.47.0 without a registry: Debian's python3 and
# busybox-static (a local HTTP server for the locustfiles to hit) in a
# debootstrap root, Locust from PyPI in a venv at /opt/locust, imported with
# `docker import` (atq-example/locust-base:2.47.0, recipe image/root.sh), plus a
# layer with the entrypoint (image/atq-locust) and the locustfiles
# (locustfiles/ -> /locust).
#
# Usage: ./build-image.sh [--force]
#   --force   rebuild the base root even if its recipe did not change
# Environment:
#   LOCUST_VERSION  Locust release from PyPI (default 2.47.0; the tags follow it)
#   IMAGE           image to build      (default atq-example/locust:$LOCUST_VERSION)
#   BASE_IMAGE      its Debian root     (default atq-example/locust-base:$LOCUST_VERSION)
#   MIRROR          Debian mirror       (default http://deb.debian.org/debian)
#   SUITE           Debian suite        (default bookworm)
#   DEBOOTSTRAP_CACHE  downloaded .debs kept for the next build
#               (default /var/cache/atq-example-debootstrap; empty: none)
#   WORKDIR         where the root goes (default: a fresh dir under /var/tmp)
#   PIP_INDEX_URL   another Python package index (pip's own variable)
#   CA_BUNDLE       CA certificates pip trusts while building (default: the
#                   host's, $PIP_CERT, $SSL_CERT_FILE or /etc/ssl/certs/...)
#
# Idempotent: the base is rebuilt only when its recipe changed (a label holds
# the recipe's sha256); the layer is a cached `docker build`, a no-op when no
# file changed. Building the base needs root (debootstrap, chroot), the Debian
# mirror and PyPI; the layer takes seconds.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
DI_LIB=$HERE/../debian-image.sh
DI_NAME=build-image
LOCUST_VERSION=${LOCUST_VERSION:-2.47.0}
IMAGE=${IMAGE:-atq-example/locust:$LOCUST_VERSION}
BASE_IMAGE=${BASE_IMAGE:-atq-example/locust-base:$LOCUST_VERSION}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
# shellcheck source-path=SCRIPTDIR source=../debian-image.sh
. "$DI_LIB"

di_args "$@"
di_base "$HERE/image/root.sh" "locust==$LOCUST_VERSION" -- \
    'WORKDIR /tmp' \
    'EXPOSE 5557' \
    'ENTRYPOINT ["/usr/local/bin/atq-locust"]' \
    'CMD ["worker"]'
di_layer usr/local/bin/atq-locust=image/atq-locust locust=locustfiles
