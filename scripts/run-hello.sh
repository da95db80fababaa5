#!/usr/bin/env bash
# The main job: a real distributed task on the local engine. Prepares the engine (it answers,
# the example image exists; no `swarm init`), builds the `atq` binary, and runs
# examples/hello/hello.yaml: 3 workers serving HTTP and a master that checks it reaches every one
# of them. On a swarm manager atq runs it as swarm services on an overlay network; on a plain
# engine as containers on a bridge network (ATQ_ENGINE=swarm|docker, or --engine, picks one).
# Exits with the master's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare-engine.sh --no-swarm >&2
cargo build --quiet --release -p atq-cli
exec target/release/atq run examples/hello/hello.yaml "$@"
