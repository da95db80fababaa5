#!/usr/bin/env python3
"""Binding overhead: `Director.run` of one task on a fresh FakeCluster, through the Python
bindings (`atq`) against the same loop in Rust (the `fake-run` binary of this crate).

Both run `--iterations` deploy + wait + teardown cycles of one task (N workers, 1 master) on one
zero-latency FakeCluster, and report the mean time per run. The two sides alternate (A B A B …,
`--rounds` pairs) so that both see the same machine load; the report gives medians, min–max, and
the ratio python / rust per N.

    cargo build -p atq-benches --profile bench --bin fake-run
    pip install ./atq-py            # or: maturin develop --release -m atq-py/Cargo.toml
    python3 benches/python_overhead.py [--rounds 5] [--iterations 200] [--sizes 1,100,10000]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import atq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_RUN = os.path.join(ROOT, "target", "release", "fake-run")
IMAGE = "bench/worker:1"


def python_mean_us(workers: int, iterations: int) -> float:
    """Mean microseconds per `Director.run` through the bindings."""
    director = atq.Director(atq.FakeCluster())
    task = atq.Task(name="overhead", worker=atq.Service(IMAGE, replicas=workers), master=atq.Service(IMAGE))
    director.run(task)  # warm-up, as the Rust side does
    start = time.perf_counter()
    for _ in range(iterations):
        outcome = director.run(task)
        assert outcome.exit_code == 0
    return (time.perf_counter() - start) * 1e6 / iterations


def rust_mean_us(workers: int, iterations: int) -> float:
    """Mean microseconds per `Director::run` in Rust (the `fake-run` binary)."""
    out = subprocess.run(
        [FAKE_RUN, "--workers", str(workers), "--iterations", str(iterations)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--sizes", default="1,100,10000")
    args = parser.parse_args()
    if not os.path.exists(FAKE_RUN):
        sys.exit(f"{FAKE_RUN} missing: cargo build -p atq-benches --profile bench --bin fake-run")

    print(f"load before: {os.getloadavg()}")
    print("| N | python (µs/run) median, min–max | rust (µs/run) median, min–max | python / rust |")
    print("|---:|---:|---:|---:|")
    for n in [int(s) for s in args.sizes.split(",")]:
        iterations = max(1, args.iterations // max(1, n // 100)) if n > 100 else args.iterations
        py, rs = [], []
        for _ in range(args.rounds):
            py.append(python_mean_us(n, iterations))
            rs.append(rust_mean_us(n, iterations))
        p, r = statistics.median(py), statistics.median(rs)
        print(
            f"| {n} | {p:.1f}, {min(py):.1f}–{max(py):.1f} | {r:.1f}, {min(rs):.1f}–{max(rs):.1f} | {p / r:.2f} |"
        )
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
