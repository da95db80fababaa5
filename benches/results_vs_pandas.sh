#!/bin/sh
# atq's results summary against pandas, side by side, at 1M, 3M and 10M samples.
#
#   benches/results_vs_pandas.sh [PYTHON]     (PYTHON: an interpreter with pandas; default python3)
#
# Generates the JTLs into a temporary directory (removed at the end; ~1 GB at 10M), then for
# each size runs atq, pandas (all columns), pandas (usecols), twice, alternated, pinned to one
# core (taskset -c 0), and prints every line. Rates are on CPU time (see results_summary.rs).
set -eu
PYTHON=${1:-python3}
here=$(cd "$(dirname "$0")" && pwd)
cargo build -q -p atq-benches --profile bench --bin results-summary
bin=${CARGO_TARGET_DIR:-$here/../target}/release/results-summary
[ -x "$bin" ] || bin=${CARGO_TARGET_DIR:-$here/../target}/bench/results-summary
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 1000000 3000000 10000000; do
    "$bin" generate "$tmp/r.jtl" "$n"
    for round in 1 2; do
        taskset -c 0 "$bin" summarize "$tmp/r.jtl"
        taskset -c 0 "$PYTHON" "$here/results_pandas.py" "$tmp/r.jtl"
        taskset -c 0 "$PYTHON" "$here/results_pandas.py" "$tmp/r.jtl" --usecols
    done
    rm -f "$tmp/r.jtl"
done
