"""The Python surface on FakeCluster: tasks, deploy/wait/teardown, exceptions, events."""

import _thread
import asyncio
import datetime
import threading
import time

import pytest

import atq


# --- tasks -----------------------------------------------------------------------------------


def test_task_keeps_what_it_was_given():
    task = atq.Task(
        "load",
        worker=atq.Service("lab/jmeter:2.13", replicas=4, env={"MODE": "worker"}, args=["-s"]),
        master=atq.Service("lab/jmeter:2.13"),
        delay=2,
        wait_command=atq.WaitCommand("nc -w1 $W 1099", expected_result="ready", timeout=60),
        start_timeout=datetime.timedelta(minutes=1),
        labels={"team": "perf"},
    )
    assert task.name == "load"
    assert task.worker.replicas == 4
    assert task.worker.env == {"MODE": "worker"}
    assert task.worker.args == ["-s"]
    assert task.delay == 2.0
    assert task.start_timeout == 60.0
    assert task.wait_command.expected_result == "ready"
    assert task.labels == {"team": "perf"}


def test_task_round_trips_through_dict_json_and_yaml(task):
    assert atq.Task.from_dict(task.to_dict()) == task
    assert atq.Task.from_json(task.to_json()) == task
    assert atq.Task.from_yaml(task.to_yaml()) == task


def test_task_reads_atq_director_payload():
    task = atq.Task.from_dict(
        {
            "name": "jm",
            "delay": 1,
            "waitCommand": {"command": "true", "expectedResult": "ok", "timeout": 5},
            "worker": {"image": "w", "replicas": 2, "environment": ["A=1"]},
            "master": {"image": "m"},
        }
    )
    assert task.worker.env == {"A": "1"}
    assert task.wait_command.timeout == 5.0


def test_validation_error_names_the_field():
    with pytest.raises(atq.ValidationError, match="worker.replicas") as info:
        atq.Task("ok", worker=atq.Service("img", replicas=0), master=atq.Service("img"))
    assert info.value.field == "worker.replicas"
    assert info.value.problems == [("worker.replicas", "must be at least 1")]
    assert isinstance(info.value, atq.AtqError)


def test_validation_error_lists_every_problem():
    with pytest.raises(atq.ValidationError) as info:
        atq.Task("bad name", worker=atq.Service("img", replicas=0), master=atq.Service("img"))
    assert [f for f, _ in info.value.problems] == ["name", "worker.replicas"]


def test_task_file_errors_name_the_field():
    with pytest.raises(atq.ValidationError) as info:
        atq.Task.from_yaml("name: x\nworker: {image: w, replicas: many}\nmaster: {image: m}\n")
    assert info.value.field.startswith("worker")


def test_a_negative_duration_names_the_argument():
    with pytest.raises(atq.ValidationError, match="delay"):
        atq.Task("t", worker=atq.Service("i"), master=atq.Service("i"), delay=-1)


# --- deploy, wait, teardown ------------------------------------------------------------------


def test_deploy_gives_workers_and_the_master_outcome(task):
    fake = atq.FakeCluster(master_exit_code=3, master_logs="one\ntwo")
    director = atq.Director(fake)
    with director.deploy(task) as d:
        assert len(d.workers) == 3
        assert len(set(d.workers)) == 3
        assert fake.services() == ["t1_master", "t1_worker"]
        assert fake.service_env("t1_master")["WORKER_CSV_VIPS"] == ",".join(d.workers)
        out = d.wait(timeout=5)
    assert out.exit_code == 3
    assert out.state == "failed"
    assert out.logs == "one\ntwo\n"
    assert out.failed_workers == []
    assert not out.succeeded
    assert out.to_dict()["exit_code"] == 3
    assert fake.is_empty()


def test_run_deploys_waits_and_tears_down(task, atq_fake_cluster, atq_fake_director):
    report = atq_fake_director.run(task)
    assert report.exit_code == 0 and report.passed and report.failure is None
    assert report.outcome.succeeded and not report.kept
    assert atq_fake_cluster.is_empty()


def test_teardown_happens_when_the_block_raises(task, atq_fake_cluster, atq_fake_director):
    with pytest.raises(ZeroDivisionError):
        with atq_fake_director.deploy(task) as d:
            assert atq_fake_cluster.services()
            1 / 0
    assert atq_fake_cluster.is_empty()
    d.teardown()  # idempotent


def test_list_inspect_teardown_by_name(task, atq_fake_cluster, atq_fake_director):
    d = atq_fake_director.deploy(task)
    d.keep()
    [info] = atq_fake_director.list()
    assert info["name"] == "t1"
    assert atq_fake_director.inspect("t1")["workers_total"] == 3
    atq_fake_director.teardown("t1")
    assert atq_fake_cluster.is_empty()
    assert atq_fake_director.prune() == {"tasks": []}


def test_prune_all_removes_kept_tasks(task, atq_fake_cluster, atq_fake_director):
    atq_fake_director.deploy(task).keep()
    report = atq_fake_director.prune_all()
    assert [(t["name"], t["error"]) for t in report["tasks"]] == [("t1", None)]
    assert report["tasks"][0]["resources"] > 0
    assert atq_fake_cluster.is_empty()


def test_a_collected_deployment_is_torn_down(task):
    fake = atq.FakeCluster()
    director = atq.Director(fake)
    director.deploy(task)  # dropped at once
    director.run(task.renamed("t2"))  # the next call finds the engine clean of t2 and runs
    for _ in range(100):
        if fake.is_empty():
            break
        time.sleep(0.01)
    assert fake.is_empty()


# --- exceptions ------------------------------------------------------------------------------


def test_task_exists(task, atq_fake_director):
    with atq_fake_director.deploy(task):
        with pytest.raises(atq.TaskExists) as info:
            atq_fake_director.deploy(task)
    assert info.value.task == "t1"


def test_task_not_found(atq_fake_director):
    with pytest.raises(atq.TaskNotFound):
        atq_fake_director.inspect("nope")
    with pytest.raises(atq.TaskNotFound):
        atq_fake_director.teardown("nope")


def test_missing_image_is_replica_failed_and_rolls_back(task):
    fake = atq.FakeCluster(missing_images=["img"])
    with pytest.raises(atq.ReplicaFailed, match="No such image") as info:
        atq.Director(fake).deploy(task)
    assert info.value.service == "t1_worker"
    assert fake.is_empty()


def test_engine_failure_is_engine_error(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.fail_call("create_service")
    with pytest.raises(atq.EngineError, match="injected fault"):
        atq_fake_director.deploy(task)
    assert atq_fake_cluster.is_empty()


def test_workers_that_never_start_are_a_deploy_timeout(atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.never_starts("slow")
    task = atq.Task("t", worker=atq.Service("slow"), master=atq.Service("m"), start_timeout=0.2)
    with pytest.raises(atq.DeployTimeout):
        atq_fake_director.deploy(task)
    assert atq_fake_cluster.is_empty()


def test_a_probe_that_never_passes_is_a_deploy_timeout(atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.probe_output(1, "not yet")
    task = atq.Task(
        "t", worker=atq.Service("w"), master=atq.Service("m"), wait_command=atq.WaitCommand("x", timeout=0.2)
    )
    with pytest.raises(atq.DeployTimeout, match="wait command"):
        atq_fake_director.deploy(task)


def test_wait_timeout_is_a_deploy_timeout(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_never_exits()
    with atq_fake_director.deploy(task) as d:
        with pytest.raises(atq.DeployTimeout):
            d.wait(timeout=0.2)
    assert atq_fake_cluster.is_empty()


def test_workers_that_died_are_in_the_outcome(task):
    fake = atq.FakeCluster()
    fake.master_never_exits()
    director = atq.Director(fake)
    with director.deploy(task) as d:
        fake.kill_replica("t1_worker", 1, 137)
        fake.kill_replica("t1_master", 1, 0)
        out = d.wait(timeout=5)
    assert [w["slot"] for w in out.failed_workers] == [1]
    assert out.exit_code == 0 and not out.succeeded


def test_unknown_fake_call_kind_names_the_argument(atq_fake_cluster):
    with pytest.raises(atq.ValidationError, match="create_service"):
        atq_fake_cluster.fail_call("create_servce")


def test_director_refuses_other_clusters():
    with pytest.raises(TypeError):
        atq.Director(object())


# --- Ctrl-C ----------------------------------------------------------------------------------


def _interrupt_after(seconds):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_ctrl_c_during_deploy_rolls_back_and_raises(task):
    fake = atq.FakeCluster(latency=30)
    director = atq.Director(fake)
    _interrupt_after(0.3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        director.deploy(task)
    assert time.monotonic() - started < 5
    assert fake.is_empty()


def test_ctrl_c_during_wait_tears_down_and_raises(task):
    fake = atq.FakeCluster()
    fake.master_never_exits()
    d = atq.Director(fake).deploy(task)
    _interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        d.wait()
    assert fake.is_empty()


def test_other_threads_run_while_a_call_waits(task):
    """The GIL is released while waiting."""
    fake = atq.FakeCluster(latency=0.5)
    ticks = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=spin)
    t.start()
    try:
        atq.Director(fake).run(task)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 10


# --- events ----------------------------------------------------------------------------------


def test_events_reach_the_callback_as_dicts(task):
    events = []
    director = atq.Director(atq.FakeCluster(), on_event=events.append)
    director.run(task)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "network_created"
    assert "workers_ready" in kinds and kinds[-1] == "torn_down"
    ready = next(e for e in events if e["event"] == "workers_ready")
    assert ready["task"] == "t1" and len(ready["addresses"]) == 3


def test_a_callback_per_call_overrides_the_directors(task):
    mine, directors = [], []
    director = atq.Director(atq.FakeCluster(), on_event=directors.append)
    with director.deploy(task, on_event=mine.append):
        pass
    assert mine and mine[-1]["event"] == "torn_down"
    assert directors == []


def test_a_failing_callback_cancels_and_rolls_back(task):
    fake = atq.FakeCluster()

    def boom(event):
        if event["event"] == "workers_created":
            raise ValueError("callback failed")

    with pytest.raises(ValueError, match="callback failed"):
        atq.Director(fake, on_event=boom).deploy(task)
    assert fake.is_empty()


# --- asyncio ---------------------------------------------------------------------------------


def test_async_deploy_wait_teardown(task):
    fake = atq.FakeCluster(master_exit_code=7)
    events = []

    async def main():
        director = atq.Director(fake, on_event=events.append)
        async with await director.deploy_async(task) as d:
            assert len(d.workers) == 3
            out = await d.wait_async(timeout=5)
        assert fake.is_empty()
        return out

    out = asyncio.run(main())
    assert out.exit_code == 7
    assert "workers_ready" in [e["event"] for e in events]


def test_async_errors_are_atq_exceptions(task):
    async def main():
        await atq.Director(atq.FakeCluster(missing_images=["img"])).deploy_async(task)

    with pytest.raises(atq.ReplicaFailed):
        asyncio.run(main())


def test_cancelling_an_async_deploy_rolls_back(task):
    fake = atq.FakeCluster(latency=10)

    async def main():
        director = atq.Director(fake)
        pending = asyncio.ensure_future(director.deploy_async(task))
        await asyncio.sleep(0.2)
        assert fake.services()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        for _ in range(100):
            if fake.is_empty():
                return
            await asyncio.sleep(0.02)

    asyncio.run(main())
    assert fake.is_empty()


def test_a_data_bundle_is_pushed_mounted_and_kept_while_in_use(tmp_path, atq_fake_cluster, atq_fake_director):
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "plan.jmx").write_text("<jmeterTestPlan/>")
    bundle = atq_fake_director.push_data(tmp_path)
    assert [b["id"] for b in atq_fake_director.data_bundles()] == [bundle]
    task = atq.Task(
        "with-data",
        worker=atq.Service("img", replicas=2, data=bundle),
        master=atq.Service("img", data=bundle),
    )
    with atq_fake_director.deploy(task):
        with pytest.raises(atq.DataError, match="with-data_"):
            atq_fake_director.remove_data(bundle)
    atq_fake_director.remove_data(bundle)
    assert atq_fake_director.data_bundles() == []
    assert atq_fake_cluster.is_empty()


def test_an_unsafe_archive_is_a_data_error(tmp_path, atq_fake_director):
    (tmp_path / "link").symlink_to("/etc/passwd")
    with pytest.raises(atq.DataError, match="link"):
        atq_fake_director.push_data(tmp_path)


def test_the_masters_logs_are_readable_before_and_after_it_exits(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_exits(0, "first\nsecond")
    with atq_fake_director.deploy(task) as d:
        out = d.wait()
        assert d.logs() == out.logs == "first\nsecond\n"


# --- artifacts -------------------------------------------------------------------------------


def test_save_artifacts_writes_the_files_the_master_wrote(tmp_path):
    fake = atq.FakeCluster()
    fake.master_artifacts({"/atq/results/summary.txt": b"requests: 100\n", "/atq/results/sub/data.csv": b"a,b\n"})
    task = atq.Task(
        "arts",
        worker=atq.Service("lab/worker:1"),
        master=atq.Service("lab/master:1"),
        artifacts="/atq/results",
    )
    assert task.artifacts == "/atq/results"
    with atq.Director(fake).deploy(task) as d:
        assert fake.service_env("arts_master")["ATQ_RESULTS_DIR"] == "/atq/results"
        d.wait(timeout=5)
        files = d.save_artifacts(tmp_path / "out")
    assert sorted(files) == [str(tmp_path / "out" / "sub" / "data.csv"), str(tmp_path / "out" / "summary.txt")]
    assert (tmp_path / "out" / "summary.txt").read_text() == "requests: 100\n"
    assert fake.is_empty()


def test_save_artifacts_is_empty_for_a_task_without_artifacts(task, tmp_path):
    with atq.Director(atq.FakeCluster()).deploy(task) as d:
        d.wait(timeout=5)
        assert d.save_artifacts(str(tmp_path / "out")) == []
    assert task.artifacts is None


def test_a_relative_artifacts_directory_is_a_validation_error():
    with pytest.raises(atq.ValidationError, match="artifacts"):
        atq.Task("t", worker=atq.Service("w"), master=atq.Service("m"), artifacts="results")


def test_a_master_that_wrote_no_artifacts_raises(tmp_path):
    task = atq.Task("none", worker=atq.Service("w"), master=atq.Service("m"), artifacts="/atq/results")
    with atq.Director(atq.FakeCluster()).deploy(task) as d:
        d.wait(timeout=5)
        with pytest.raises(atq.AtqError, match="wrote no artifacts"):
            d.save_artifacts(tmp_path)


def test_workers_shard_files_of_their_bundle(tmp_path):
    shard = atq.Shard("users.csv", split="blocks", header=False, delimiter=";")
    assert (shard.file, shard.split, shard.header, shard.delimiter) == ("users.csv", "blocks", False, ";")
    workers = atq.Service("busybox", replicas=4, data="0123456789abcdef", shards=[shard, atq.Shard("ids.csv")])
    assert [s.file for s in workers.shards] == ["users.csv", "ids.csv"]
    atq.Task("sharded", worker=workers, master=atq.Service("busybox"))
    with pytest.raises(atq.ValidationError) as err:
        atq.Shard("users.csv", split="stripes")
    assert "round-robin or blocks" in str(err.value)
    with pytest.raises(atq.ValidationError) as err:
        atq.Task(
            "sharded",
            worker=atq.Service("busybox"),
            master=atq.Service("busybox", data="0123456789abcdef", shards=[atq.Shard("users.csv")]),
        )
    assert "master.shards" in str(err.value)


def test_push_data_can_mark_files_for_sharding(tmp_path):
    (tmp_path / "users.csv").write_text("user\nann\nbob\n")
    director = atq.Director(atq.FakeCluster())
    plain = director.push_data(tmp_path)
    marked = director.push_data(tmp_path, split={"users.csv": "blocks"})
    assert plain != marked
    with pytest.raises(atq.DataError) as err:
        director.push_data(tmp_path, split={"nope.csv": "blocks"})
    assert "nope.csv" in str(err.value)


# --- what the docstrings promise about the wait command --------------------------------------


def probe_task(expected=None, image=None):
    return atq.Task(
        "probed",
        worker=atq.Service("lab/worker:1"),
        master=atq.Service("lab/master:1"),
        wait_command=atq.WaitCommand("check", expected_result=expected, timeout=0.3, image=image),
    )


def test_the_wait_command_runs_in_the_masters_image_unless_told(atq_fake_director):
    events = []
    with atq_fake_director.deploy(probe_task(), on_event=events.append):
        pass
    with atq_fake_director.deploy(probe_task(image="lab/probe:1"), on_event=events.append):
        pass
    assert [e["image"] for e in events if e["event"] == "probe_started"] == ["lab/master:1", "lab/probe:1"]


def test_the_wait_command_passes_on_exit_0_with_the_trimmed_output_equal(atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.probe_output(0, "  ready \n")
    with atq_fake_director.deploy(probe_task(expected="ready")):
        pass
    atq_fake_cluster.probe_output(0, "ready now")  # contains it, but is not equal
    with pytest.raises(atq.ProbeTimeout):
        atq_fake_director.deploy(probe_task(expected="ready"))
    atq_fake_cluster.probe_output(1, "ready")  # equal, but the command failed
    with pytest.raises(atq.ProbeTimeout):
        atq_fake_director.deploy(probe_task(expected="ready"))
    assert atq_fake_cluster.is_empty()


def test_an_unknown_engine_name_is_refused_before_connecting():
    with pytest.raises(atq.AtqError, match=r'ATQ_ENGINE="kubernetes" is not valid'):
        atq.DockerCluster(host="unix:///nonexistent.sock", engine="kubernetes")


def test_a_stop_grace_period_per_role():
    s = atq.Service("img", stop_grace_period=datetime.timedelta(seconds=2.5))
    assert s.stop_grace_period == 2.5
    assert atq.Service("img").stop_grace_period == 1.0
