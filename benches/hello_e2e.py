"""hello end to end: `atq run` on each backend against the testcontainers-python way, alternated.

    python3 benches/hello_e2e.py --atq target/release/atq --python /path/to/venv/bin/python \
        [--pairs 5] [--sizes 3,10] [--methods docker,testcontainers,swarm]

Each round runs every method once per size, one after the other (A B C A B C ...), each as a
whole process: `atq --engine docker|swarm run --json examples/hello/hello.yaml` (N workers:
a copy of the file with `replicas: N`, written under /tmp and deleted after), and
`benches/hello_testcontainers.py N` (TESTCONTAINERS_RYUK_DISABLED=true). A run counts only if it
exits 0; the next one starts only once the engine holds nothing of it (containers, networks,
volumes, services, configs by label). For atq, each `--json` line's arrival time is a phase
mark: workers ready, probe passed, master running, master exited, torn down, process exit.

Prints every run, then per size and method the median wall time (min-max), its ratio to the
testcontainers way, and atq's phase medians. Run by hand (it needs the engine, a swarm manager
for the swarm backend, the hello image from examples/hello/build-images.sh, and a venv with
`pip install testcontainers`); never in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "hello.yaml"
TESTCONTAINERS = ROOT / "benches" / "hello_testcontainers.py"

# atq --json events that end a phase, in the order they arrive.
PHASES = ["workers_ready", "probe_passed", "master_running", "master_exited", "torn_down"]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def task_file(n: int, directory: Path) -> Path:
    text = HELLO.read_text()
    text = re.sub(r"replicas: 3\b", f"replicas: {n}", text)
    text = text.replace("EXPECTED_WORKERS=3", f"EXPECTED_WORKERS={n}")
    path = directory / f"hello-{n}.yaml"
    path.write_text(text)
    return path


def leftovers(label: str) -> int:
    total = 0
    for cmd in (
        ["docker", "ps", "-aq", "--filter", f"label={label}"],
        ["docker", "network", "ls", "-q", "--filter", f"label={label}"],
        ["docker", "volume", "ls", "-q", "--filter", f"label={label}"],
        ["docker", "service", "ls", "-q", "--filter", f"label={label}"],
        ["docker", "config", "ls", "-q", "--filter", f"label={label}"],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True)
        total += len(out.stdout.split())
    return total


def wait_nothing_left(label: str, limit: float = 60.0) -> float:
    """Waits until nothing carries `label`; returns how long that took after the process ended."""
    start = time.monotonic()
    while leftovers(label):
        if time.monotonic() - start > limit:
            raise SystemExit(f"objects labelled {label} still there after {limit} s")
        time.sleep(0.1)
    return time.monotonic() - start


def run_atq(atq: str, backend: str, path: Path, name: str) -> tuple[float, dict[str, float]]:
    start = time.monotonic()
    proc = subprocess.Popen(
        [atq, "--engine", backend, "run", "--json", "--name", name, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in ("ATQ_FAKE", "ATQ_ENGINE")},
    )
    marks: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line).get("event")
        if event in PHASES and event not in marks:
            marks[event] = time.monotonic() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    code = proc.wait()
    took = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"atq --engine {backend} run exited {code}: {stderr}")
    marks["exit"] = took
    return took, marks


def run_testcontainers(python: str, n: int) -> float:
    start = time.monotonic()
    env = dict(os.environ, TESTCONTAINERS_RYUK_DISABLED="true")
    out = subprocess.run([python, str(TESTCONTAINERS), str(n)], capture_output=True, text=True, env=env)
    took = time.monotonic() - start
    if out.returncode != 0 or f"reached {n}/{n}" not in out.stdout:
        raise SystemExit(f"testcontainers way exited {out.returncode}: {out.stdout}{out.stderr}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--atq", required=True)
    ap.add_argument("--python", required=True, help="a Python with testcontainers installed")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--sizes", default="3,10")
    ap.add_argument("--methods", default="docker,testcontainers,swarm")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = args.methods.split(",")
    times: dict[tuple[int, str], list[float]] = {}
    phases: dict[tuple[int, str], list[dict[str, float]]] = {}
    print(f"load before: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="atq-hello-e2e-") as tmp:
        files = {n: task_file(n, Path(tmp)) for n in sizes}
        for round_ in range(1, args.pairs + 1):
            for n in sizes:
                for method in methods:
                    name = f"e2e-{method}-{n}-{round_}-{os.getpid()}"
                    if method == "testcontainers":
                        took = run_testcontainers(args.python, n)
                        settle = wait_nothing_left("org.testcontainers")
                    else:
                        took, marks = run_atq(args.atq, method, files[n], name)
                        settle = wait_nothing_left(f"io.atq.task={name}")
                        phases.setdefault((n, method), []).append(marks)
                    times.setdefault((n, method), []).append(took)
                    print(
                        f"round {round_} N={n:<2} {method:<14} {took:6.2f} s"
                        f"  (left-over check {settle:.2f} s, load {load()})",
                        flush=True,
                    )
    print(f"load after: {load()}\n")
    print("| N | method | end to end, median (s) | min-max (s) | ratio to testcontainers |")
    print("|---:|---|---:|---:|---:|")
    for n in sizes:
        base = statistics.median(times[(n, "testcontainers")]) if (n, "testcontainers") in times else None
        for method in methods:
            t = times[(n, method)]
            med = statistics.median(t)
            ratio = f"{med / base:.2f}" if base else "-"
            print(f"| {n} | {method} | {med:.2f} | {min(t):.2f}-{max(t):.2f} | {ratio} |")
    print("\natq phases: median time since start when each phase ended (s)")
    print("| N | backend | " + " | ".join(PHASES + ["exit"]) + " |")
    print("|---:|---|" + "---:|" * (len(PHASES) + 1))
    for (n, method), runs in sorted(phases.items()):
        cells = []
        for phase in PHASES + ["exit"]:
            values = [r[phase] for r in runs if phase in r]
            cells.append(f"{statistics.median(values):.2f}" if values else "-")
        print(f"| {n} | {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
