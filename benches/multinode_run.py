#!/usr/bin/env python3
"""Deploy and teardown times of `atq run` on the multi-node swarm of tests/multinode/up.sh.

    eval "$(tests/multinode/up.sh)"
    cargo build -p atq-cli
    python3 benches/multinode_run.py --workers 6 --rounds 5
    python3 benches/multinode_run.py --workers 300 --rounds 1 --heartbeat 5s

Each round runs `atq run --json` (DOCKER_HOST = the manager) on a task of N busybox workers with
no placement constraint (the scheduler spreads them over the nodes) and a master that exits at
once, and reads the phases from the run's own event timestamps: deploy (first event until
`master_running`), teardown (`teardown_started` until `torn_down`), and the whole run as the
process saw it. With --heartbeat the swarm's dispatcher heartbeat is set for the rounds and set
back to 1 s after (300 starting containers stall this machine's engines long enough for a 1 s
heartbeat to mark nodes down). Standard library only.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time


def stamp(event):
    return datetime.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


def one_round(atq, host, workers, n):
    name = f"bench-mn{workers}-{os.getpid()}-{n}"
    task = (
        f"name: {name}\n"
        f"startTimeout: 600\n"
        f"worker:\n  image: atq-test/busybox:latest\n  replicas: {workers}\n"
        f"  command: [/bin/sh, -c]\n  args: [\"trap 'exit 0' TERM; sleep 3600 & wait\"]\n"
        f"master:\n  image: atq-test/busybox:latest\n  command: [/bin/sh, -c]\n  args: [\"exit 0\"]\n"
    )
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "task.yaml")
        with open(path, "w") as f:
            f.write(task)
        env = dict(os.environ, DOCKER_HOST=host)
        start = time.time()
        out = subprocess.run([atq, "run", "--json", "--engine", "swarm", path], env=env, capture_output=True, text=True)
        took = time.time() - start
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    at = {}
    for e in events:
        at.setdefault(e["event"], stamp(e))
    if out.returncode != 0 or "torn_down" not in at:
        sys.exit(f"round {n}: exit {out.returncode}\n{out.stderr}")
    first = min(stamp(e) for e in events)
    return at["master_running"] - first, at["torn_down"] - at["teardown_started"], took


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--heartbeat", help="dispatcher heartbeat during the rounds (e.g. 5s); back to 1s after")
    p.add_argument("--atq", default=os.path.join(os.path.dirname(__file__), "..", "target", "debug", "atq"))
    args = p.parse_args()
    host = os.environ.get("ATQ_MULTINODE_HOST") or sys.exit("ATQ_MULTINODE_HOST is not set: eval \"$(tests/multinode/up.sh)\"")
    if args.heartbeat:
        subprocess.run(["docker", "-H", host, "swarm", "update", "--dispatcher-heartbeat", args.heartbeat], check=True,
                       capture_output=True)
    try:
        rows = []
        for n in range(args.rounds):
            load = os.getloadavg()[0]
            deploy, teardown, total = one_round(args.atq, host, args.workers, n)
            rows.append((deploy, teardown, total))
            print(f"round {n + 1}: {args.workers} workers: deploy {deploy:.2f} s, teardown {teardown:.2f} s, "
                  f"atq run {total:.2f} s (load {load:.1f})", flush=True)
    finally:
        if args.heartbeat:
            subprocess.run(["docker", "-H", host, "swarm", "update", "--dispatcher-heartbeat", "1s"], capture_output=True)
    for i, what in enumerate(["deploy", "teardown", "atq run"]):
        values = sorted(r[i] for r in rows)
        print(f"{what}: {values[0]:.2f}–{values[-1]:.2f} s (median {values[len(values) // 2]:.2f})")


if __name__ == "__main__":
    main()
