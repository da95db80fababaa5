"""On a real Docker engine, once per backend (swarm, docker; skipped when none is reachable, unless
ATQ_REQUIRE_ENGINE=1).

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


# --- the run flow, keep-on-failure and Ctrl-C on the real engine ------------------------------

import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import threading  # noqa: E402


def engine_task(name, master_script, workers=2):
    return atq.Task(
        name,
        worker=atq.Service(IMAGE, replicas=workers, command=["sh", "-c", "echo worker-ready; exec sleep 600"]),
        master=atq.Service(IMAGE, command=["sh", "-c", master_script]),
        start_timeout=120,
    )


def ctrl_c_on(events, *kinds):
    """An on_event callback recording events that sends the process SIGINT (a real Ctrl-C) once
    for each of `kinds` as it comes."""
    pending = list(kinds)

    def on_event(event):
        events.append(event)
        if pending and event["event"] == pending[0]:
            pending.pop(0)
            threading.Thread(target=signal.raise_signal, args=(signal.SIGINT,)).start()

    return on_event


def gone(director, name):
    with pytest.raises(atq.TaskNotFound):
        director.inspect(name)
    return True


def test_keep_on_failure_leaves_a_failed_run_up_with_its_logs(atq_director, atq_name):
    task = engine_task(atq_name("python-kept"), "echo failing on purpose; exit 3")
    report = atq_director.run(task, keep="on_failure")
    assert (report.exit_code, report.kept) == (3, True)
    info = atq_director.inspect(task.name)
    assert info["detached"] is True, "a task kept for debugging is not pruned for its owner having exited"
    assert "failing on purpose" in atq_director.logs(task.name)
    assert "worker-ready" in atq_director.logs(task.name, "worker")
    atq_director.teardown(task.name)
    assert gone(atq_director, task.name)


def test_ctrl_c_in_the_middle_of_a_run_tears_it_down_and_says_so(atq_director, atq_name):
    task = engine_task(atq_name("python-int"), "echo master-started; exec sleep 600")
    events, lines = [], []
    with pytest.raises(KeyboardInterrupt) as info:
        atq_director.run(task, on_event=ctrl_c_on(events, "master_running"), on_log=lines.append)
    assert info.value.abandoned is False
    kinds = [e["event"] for e in events]
    after = kinds[kinds.index("master_running") + 1 :]
    assert after[:2] == ["interrupted", "teardown_started"] and after[-1] == "torn_down", kinds
    assert gone(atq_director, task.name)


def test_a_second_ctrl_c_stops_waiting_and_the_cleanup_still_finishes(atq_director, atq_name):
    """Issue 10: a double Ctrl-C silently left a worker service and network."""
    task = engine_task(atq_name("python-twice"), "exec sleep 600")
    events = []
    with pytest.raises(KeyboardInterrupt) as info:
        atq_director.run(task, on_event=ctrl_c_on(events, "master_running", "teardown_started"))
    assert info.value.abandoned is True
    assert "abandoned" in str(info.value)
    kinds = [e["event"] for e in events]
    assert kinds[-3:] == ["interrupted", "teardown_started", "cleanup_abandoned"], kinds
    assert "torn_down" not in kinds, "nothing claims the task was removed before it was"
    # The cleanup goes on in the background (the interpreter waits for it at exit).
    assert atq.wait_for_cleanups(120)
    assert gone(atq_director, task.name)


def test_the_interpreter_finishes_a_dropped_deployments_removal_at_exit(atq_director, atq_docker_cluster, atq_name):
    name = atq_name("python-exit")
    engine = atq_docker_cluster.backend  # the child deploys on the backend this test checks
    script = textwrap.dedent(
        f"""
        import atq
        task = atq.Task({name!r}, worker=atq.Service({IMAGE!r}, command=["sleep", "600"]),
                        master=atq.Service({IMAGE!r}, command=["sleep", "600"]), start_timeout=120)
        d = atq.Director(atq.DockerCluster(engine={engine!r})).deploy(task)
        print("deployed", d.name, flush=True)
        del d  # its removal is left to atq's cleanup thread; the interpreter exits at once
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"deployed {name}" in done.stdout
    assert "atq: waiting for 1 cleanup(s) to finish" in done.stderr
    assert gone(atq_director, name)


XDIST_TESTS = """
import os, pathlib, time
import atq

PREFIX = os.environ["ATQ_XDIST_PREFIX"]
MARKS = pathlib.Path(os.environ["ATQ_XDIST_MARKS"])
IMAGE = os.environ.get("ATQ_TEST_IMAGE", "atq-test/busybox:latest")

def ours(director):
    return {t["name"] for t in director.list() if t["name"].startswith(PREFIX + "-")}

def wait_until(condition, what):
    deadline = time.monotonic() + 240
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)

def test_1_parallel_fixtures_leave_each_others_tasks(atq_director, atq_name):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    task = atq.Task(atq_name(PREFIX), worker=atq.Service(IMAGE, command=["sleep", "600"]),
                    master=atq.Service(IMAGE, command=["sleep", "600"]), start_timeout=120)
    atq_director.deploy(task).keep()  # left for this test's fixture to remove
    wait_until(lambda: len(ours(atq_director)) == 3, "the three workers' tasks")
    if worker == "gw0":
        return  # gw0's fixture now removes gw0's task, and only that
    wait_until((MARKS / "gw0-fixture-done").exists, "gw0's fixture")
    assert task.name in ours(atq_director), "another worker's fixture removed this test's task"

def test_2_mark_the_fixture_done():
    # Runs once test 1's fixtures have finished on this worker.
    (MARKS / (os.environ["PYTEST_XDIST_WORKER"] + "-fixture-done")).touch()
"""


def test_parallel_xdist_workers_fixtures_do_not_delete_each_others_tasks(
    pytester, atq_director, atq_docker_cluster, monkeypatch, tmp_path
):
    """Issue 13: with `pytest -n 3` the fixtures deleted each other's tasks (every task that
    appeared during a test was removed by its fixture)."""
    if not os.environ.get("ATQ_REQUIRE_ENGINE"):
        pytest.importorskip("xdist")
    prefix = f"python-xd{os.getpid()}"
    monkeypatch.setenv("ATQ_XDIST_PREFIX", prefix)
    monkeypatch.setenv("ATQ_XDIST_MARKS", str(tmp_path))
    # The child pytest's fixtures use the backend this test checks, not the engine's default.
    monkeypatch.setenv("ATQ_ENGINE", atq_docker_cluster.backend)
    pytester.makepyfile(XDIST_TESTS)
    result = pytester.runpytest_subprocess("-n", "3", "--dist", "each", "-p", "no:randomly", timeout=600)
    result.assert_outcomes(passed=6)
    assert not [t["name"] for t in atq_director.list() if t["name"].startswith(prefix)]


KEPT_TESTS = """
import os
import atq

IMAGE = os.environ.get("ATQ_TEST_IMAGE", "atq-test/busybox:latest")

def test_a_failing_run(atq_director, atq_name):
    task = atq.Task(atq_name(os.environ["ATQ_KEPT_PREFIX"]),
                    worker=atq.Service(IMAGE, command=["sh", "-c", "echo worker-says-hello; exec sleep 600"]),
                    master=atq.Service(IMAGE, command=["sh", "-c", "echo master-says-bye; exit 1"]), start_timeout=120)
    report = atq_director.run(task)
    assert report.passed
"""


def test_keep_on_failure_in_pytest_keeps_the_failed_tests_task_and_reports_its_logs(
    pytester, atq_director, atq_docker_cluster, monkeypatch
):
    prefix = f"python-kf{os.getpid()}"
    monkeypatch.setenv("ATQ_KEPT_PREFIX", prefix)
    monkeypatch.setenv("ATQ_ENGINE", atq_docker_cluster.backend)
    pytester.makepyfile(KEPT_TESTS)
    result = pytester.runpytest_subprocess("--atq-keep-on-failure", timeout=600)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    [kept] = [t["name"] for t in atq_director.list() if t["name"].startswith(prefix)]
    try:
        assert f"atq {kept}: master (last 50 lines)" in out and "master-says-bye" in out
        assert f"atq {kept}: workers (last 50 lines)" in out and "worker.1 | worker-says-hello" in out
        assert f"{kept}: `atq logs {kept}`, `atq down {kept}` removes it" in out
    finally:
        atq_director.teardown(kept)


def test_the_cluster_says_which_backend_and_why(atq_docker_cluster):
    assert atq_docker_cluster.backend in ("swarm", "docker")
    assert atq_docker_cluster.reason == f"ATQ_ENGINE={atq_docker_cluster.backend}"
    assert atq_docker_cluster.backend in repr(atq_docker_cluster)
