#!/bin/sh
# Builds the image the integration tests run (there is no registry to pull from):
#   atq-test/busybox:latest   FROM scratch + Debian's static busybox (sh, nc, httpd, …)
# The same image as the hello example's, under the tests' own tag, by the same script:
# idempotent, rebuilt only when the busybox binary changed.
set -eu
IMAGE="${ATQ_TEST_BUSYBOX_IMAGE:-atq-test/busybox:latest}" \
    exec "$(dirname "$0")/../../examples/hello/build-images.sh" "$@"
