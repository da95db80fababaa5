#!/usr/bin/env bash
# Runs every test of atq: lints, unit tests on FakeCluster, integration tests on the real
# engine and on a 3-node swarm built on this machine (tests/multinode), CLI tests, and the
# Python bindings' pytest suite in a fresh virtual environment.
# The single source of truth for CI (.ci/run calls it). Prepares the engine first
# (scripts/prepare-engine.sh) and fails if any test run found no tests or left anything behind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
log_dir=$(mktemp -d)
multinode_up=0
# The multi-node swarm is torn down whatever happens (it holds ~1.5 GB of tmpfs).
cleanup() {
  if [ "$multinode_up" = 1 ]; then tests/multinode/down.sh || true; fi
  rm -rf "$log_dir"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

step "prepare the engine (swarm manager, test images)"
scripts/prepare-engine.sh

step "format and lints"
cargo fmt --all --check
python3 scripts/check-module-cycles.py
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p atq-core -p atq-cli

# Runs `cargo test` for one package and fails when it ran no test at all.
cargo_tests() {
  local package=$1; shift
  step "cargo test -p $package $*"
  cargo test --locked -p "$package" "$@" 2>&1 | tee "$log_dir/$package.log"
  local passed
  passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log_dir/$package.log" | awk '{s+=$4} END {print s+0}')
  if [ "$passed" -eq 0 ]; then
    echo "error: cargo test -p $package ran no tests" >&2
    exit 1
  fi
  echo "$package: $passed tests passed"
}

cargo_tests atq-core
cargo_tests atq-cli

step "atq serve under schemathesis (its OpenAPI document, on the real engine)"
scripts/schemathesis.sh
cargo_tests atq-py
# Every real-engine test runs on both backends (`name::swarm`, `name::docker`); the 300-worker
# tests run alone afterwards (they load the engine more than anything else here).
cargo_tests atq-tests -- --test-threads=4 --skip three_hundred_workers
cargo_tests atq-tests --test large -- --test-threads=1

step "multi-node swarm: tests/multinode/up.sh, the multinode tests, down.sh"
multinode_started=$(date +%s)
# The JMeter example's image runs distributed over the nodes (returns at once if it exists).
examples/jmeter/build-image.sh
multinode_up=1
eval "$(tests/multinode/up.sh)"   # exports ATQ_MULTINODE_HOST
ATQ_REQUIRE_MULTINODE=1 cargo_tests atq-tests --test multinode -- --test-threads=4
tests/multinode/down.sh
multinode_up=0
unset ATQ_MULTINODE_HOST
echo "multi-node stage: $(( $(date +%s) - multinode_started )) s"
cargo_tests atq-examples
cargo_tests atq-benches

step "python bindings: pip install ./atq-py in a fresh venv, then pytest"
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet pytest pytest-xdist mypy
# Build with the dev profile so the wheel reuses what cargo test compiled.
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install --quiet ./atq-py
# ATQ_REQUIRE_ENGINE: the real-engine tests fail instead of skipping if the engine is unreachable.
(cd atq-py && ATQ_REQUIRE_ENGINE=1 "$venv/bin/python" -m pytest -v tests)
# The type stubs must match the module (as pydantic-core checks its own).
(cd "$(dirname "$venv")" && "$venv/bin/python" -m mypy.stubtest atq --ignore-missing-stub)
rm -rf "$(dirname "$venv")"

step "nothing left behind"
# Swarm services and configs, overlay and bridge networks, the plain backend's containers and
# its volumes (network locks and configs).
count_left() {
  { docker service ls -q --filter label=io.atq.managed;
    docker network ls -q --filter label=io.atq.managed;
    docker config ls -q --filter label=io.atq.managed;
    docker ps -aq --filter label=io.atq.managed;
    docker volume ls -q --filter label=io.atq.managed; } | wc -l
}
# The engine removes overlay networks asynchronously: give a removed one a moment to go.
for _ in $(seq 30); do
  left=$(count_left)
  [ "$left" -eq 0 ] && break
  sleep 1
done
if [ "$left" -ne 0 ]; then
  echo "error: the tests left $left atq objects on the engine:" >&2
  docker service ls --filter label=io.atq.managed >&2
  docker network ls --filter label=io.atq.managed >&2
  docker config ls --filter label=io.atq.managed >&2
  docker ps -a --filter label=io.atq.managed >&2
  docker volume ls --filter label=io.atq.managed >&2
  exit 1
fi
echo "all tests passed"
