#!/usr/bin/env bash
# Builds the images the load-test examples run, without a registry (idempotent: a fraction of
# a second each when they are up to date), and prints how long each took:
#   atq-example/jmeter:2.13     examples/jmeter/build-image.sh  (Debian's JMeter 2.13, ~1 min cold)
#   atq-example/locust:2.47.0   examples/locust/build-image.sh  (Locust from PyPI, ~2 min cold)
# From nothing they need root, the Debian mirror and (Locust) PyPI. The atq-cli test
# tests/examples.rs runs both examples; scripts/prepare-engine.sh calls this first.
set -euo pipefail
cd "$(dirname "$0")/.."
for example in jmeter locust; do
  started=$(date +%s)
  "examples/$example/build-image.sh"
  echo "build-example-images: $example image ready in $(( $(date +%s) - started ))s"
done
