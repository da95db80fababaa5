"""On a real Docker swarm engine (skipped when none is reachable, unless ATQ_REQUIRE_ENGINE=1).

Needs the image atq-test/busybox:latest (FROM scratch + busybox-static; tests/images/build.sh).
"""

import os

import pytest

import atq

pytestmark = pytest.mark.engine

IMAGE = os.environ.get("ATQ_TEST_IMAGE", "atq-test/busybox:latest")

# The master counts the distinct addresses it was given and fails unless there are 3.
MASTER = r"""
n=$(echo "$WORKER_CSV_VIPS" | tr , '\n' | sort -u | grep -c .)
echo "workers=$n list=$WORKER_CSV_VIPS"
[ "$n" -eq 3 ]
"""


def test_three_workers_give_the_master_three_distinct_addresses(atq_director):
    task = atq.Task(
        f"atq-py-{os.getpid()}",
        worker=atq.Service(IMAGE, replicas=3, command=["sleep", "600"]),
        master=atq.Service(IMAGE, command=["sh", "-c", MASTER]),
        start_timeout=120,
    )
    events = []
    with atq_director.deploy(task, on_event=events.append) as d:
        assert len(d.workers) == 3
        assert len(set(d.workers)) == 3
        out = d.wait(timeout=120)
    assert out.exit_code == 0, out.logs
    assert "workers=3" in out.logs
    assert ",".join(d.workers) in out.logs
    assert events[-1]["event"] == "torn_down"
    assert task.name not in [t["name"] for t in atq_director.list()]


def test_the_masters_artifacts_are_saved(atq_director, tmp_path):
    script = 'mkdir -p "$ATQ_RESULTS_DIR/sub" && echo ok > "$ATQ_RESULTS_DIR/summary.txt" && echo 1,2 > "$ATQ_RESULTS_DIR/sub/data.csv"'
    task = atq.Task(
        f"atq-py-art-{os.getpid()}",
        worker=atq.Service(IMAGE, command=["sleep", "600"]),
        master=atq.Service(IMAGE, command=["sh", "-c", script]),
        artifacts="/atq/results",
    )
    with atq_director.deploy(task) as d:
        assert d.wait(timeout=120).exit_code == 0
        files = d.save_artifacts(tmp_path)
    assert sorted(files) == [str(tmp_path / "sub" / "data.csv"), str(tmp_path / "summary.txt")]
    assert (tmp_path / "summary.txt").read_text() == "ok\n"
    assert (tmp_path / "sub" / "data.csv").read_text() == "1,2\n"
