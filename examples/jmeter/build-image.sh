#!/bin/sh
# Builds atq-example/jmeter:2.13 without a registry: Apache JMeter 2.13 from
# Debian (`jmeter` + `jmeter-http`), a headless JRE and busybox-static (a local
# HTTP server for the plans to hit) in a debootstrap root imported with
# `docker import` (atq-example/jmeter-base:2.13, recipe image/root.sh), plus a
# layer with the entrypoint (image/atq-jmeter) and the plans (plans/ -> /plans).
#
# Usage: ./build-image.sh [--force]
#   --force   rebuild the base root even if its recipe did not change
# Environment:
#   IMAGE       image to build      (default atq-example/jmeter:2.13)
#   BASE_IMAGE  its Debian root     (default atq-example/jmeter-base:2.13)
#   MIRROR      Debian mirror       (default http://deb.debian.org/debian)
#   SUITE       Debian suite        (default bookworm)
#   DEBOOTSTRAP_CACHE  downloaded .debs kept for the next build
#               (default /var/cache/atq-example-debootstrap; empty: none)
#   WORKDIR     where the root goes (default: a fresh dir under /var/tmp)
#
# Idempotent: the base is rebuilt only when its recipe changed (a label holds
# the recipe's sha256); the layer is a cached `docker build`, a no-op when no
# file changed. Building the base needs root (debootstrap, chroot, mount) and
# the Debian mirror, and takes about a minute; the layer takes seconds.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
DI_LIB=$HERE/../debian-image.sh
DI_NAME=build-image
IMAGE=${IMAGE:-atq-example/jmeter:2.13}
BASE_IMAGE=${BASE_IMAGE:-atq-example/jmeter-base:2.13}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
# shellcheck source-path=SCRIPTDIR source=../debian-image.sh
. "$DI_LIB"

di_args "$@"
di_base "$HERE/image/root.sh" -- \
    'WORKDIR /tmp' \
    'EXPOSE 1099 50000 60000' \
    'ENTRYPOINT ["/usr/local/bin/atq-jmeter"]' \
    'CMD ["worker"]'
di_layer usr/local/bin/atq-jmeter=image/atq-jmeter plans=plans
