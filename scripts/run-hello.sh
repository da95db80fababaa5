#!/usr/bin/env bash
# The main job: a real distributed task on the local engine. Prepares the engine (swarm,
# images), builds the `atq` binary, and runs examples/hello/hello.yaml: 3 workers serving HTTP
# and a master that checks it reaches every one of them. Exits with the master's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare-engine.sh >&2
cargo build --quiet --release -p atq-cli
exec target/release/atq run examples/hello/hello.yaml "$@"
