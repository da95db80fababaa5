"""Director.run on the core's run flow, on FakeCluster: the report and its exit-code rule,
artifacts, results and thresholds, keep, log lines, timeouts; what a director deployed and what
it captured."""

import asyncio
import os

import pytest

import atq

T0 = 1_700_000_000_000


def jtl_bytes(n=100, slow_from=None):
    """A JTL: latency i ms for sample i (1000 ms from `slow_from` on)."""
    lines = ["timeStamp,elapsed,label,responseCode,success,bytes,Hostname"]
    for i in range(1, n + 1):
        elapsed = 1000 if slow_from is not None and i >= slow_from else i
        lines.append(f"{T0 + i * 10},{elapsed},home,200,true,100,w1")
    return ("\n".join(lines) + "\n").encode()


def judged_task(name="judged", thresholds=("p95 < 500ms",)):
    return atq.Task(
        name,
        worker=atq.Service("img", replicas=2),
        master=atq.Service("img"),
        artifacts="/atq/results",
        results="results.jtl",
        thresholds=list(thresholds),
    )


# --- the report ------------------------------------------------------------------------------


def test_a_passing_run_reports_everything_and_leaves_nothing(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_exits(0, "one\ntwo")
    report = atq_fake_director.run(task)
    assert isinstance(report, atq.RunReport)
    assert (report.task, report.exit_code, report.passed, report.failure, report.kept) == ("t1", 0, True, None, False)
    assert report.outcome.logs == "one\ntwo\n"
    assert len(report.workers) == 3 and len(set(report.workers)) == 3
    assert report.artifacts == [] and report.artifacts_dir is None and report.results is None
    assert report.artifacts_error is None and report.teardown_error is None
    assert report.duration >= 0
    as_dict = report.to_dict()
    assert (as_dict["event"], as_dict["exit_code"], as_dict["schema"]) == ("outcome", 0, 1)
    report.assert_passed()
    assert atq_fake_cluster.is_empty()


def test_the_masters_exit_code_is_the_runs_and_says_why(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_exits(3, "it broke")
    report = atq_fake_director.run(task)
    assert (report.exit_code, report.passed) == (3, False)
    assert report.failure == "the master exited with code 3"
    assert "exit_code=3" in repr(report) and "the master exited with code 3" in repr(report)
    with pytest.raises(AssertionError) as info:
        report.assert_passed()
    assert "it broke" in str(info.value) and "exit code 3" in str(info.value)
    assert atq_fake_cluster.is_empty()


def test_the_artifacts_are_saved_where_asked(tmp_path, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_artifacts({"/atq/results/summary.txt": b"ok\n", "/atq/results/sub/a.csv": b"1\n"})
    task = atq.Task("arts", worker=atq.Service("w"), master=atq.Service("m"), artifacts="/atq/results")
    report = atq_fake_director.run(task, artifacts_dir=tmp_path / "out")
    assert report.exit_code == 0
    assert report.artifacts_dir == str(tmp_path / "out")
    assert sorted(report.artifacts) == [str(tmp_path / "out" / "sub" / "a.csv"), str(tmp_path / "out" / "summary.txt")]
    assert (tmp_path / "out" / "summary.txt").read_text() == "ok\n"
    assert atq_fake_cluster.is_empty()


def test_missing_artifacts_are_an_atq_error_of_the_run(tmp_path, atq_fake_cluster, atq_fake_director):
    task = atq.Task("none", worker=atq.Service("w"), master=atq.Service("m"), artifacts="/atq/results")
    report = atq_fake_director.run(task, artifacts_dir=tmp_path)
    assert report.exit_code == 125
    assert isinstance(report.artifacts_error, atq.ArtifactsNotFound)
    assert report.artifacts_error.path == "/atq/results"
    assert report.failure.startswith("artifacts: the master wrote no artifacts")
    assert atq_fake_cluster.is_empty()


def test_thresholds_are_judged_and_a_failed_one_exits_99_with_the_table(tmp_path, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_artifacts({"/atq/results/results.jtl": jtl_bytes(slow_from=90)})
    report = atq_fake_director.run(judged_task(), artifacts_dir=tmp_path)
    assert report.exit_code == 99 and not report.passed
    assert isinstance(report.results, atq.Results) and not report.results.passed
    assert report.results.total["count"] == 100
    assert report.failure.startswith("1 threshold(s) failed: p95 < 500ms")
    assert "threshold(s) failed" in repr(report)
    assert sorted(os.path.basename(f) for f in report.result_files) == ["junit.xml", "report.html", "summary.json"]
    with pytest.raises(AssertionError) as info:
        report.assert_passed()
    assert "FAIL  p95 < 500ms" in str(info.value)
    assert atq_fake_cluster.is_empty()


def test_thresholds_that_hold_pass_the_run(tmp_path, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_artifacts({"/atq/results/results.jtl": jtl_bytes()})
    report = atq_fake_director.run(judged_task(), artifacts_dir=tmp_path)
    assert (report.exit_code, report.results.passed) == (0, True)


def test_results_are_judged_without_an_artifacts_dir(atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_artifacts({"/atq/results/results.jtl": jtl_bytes(slow_from=90)})
    report = atq_fake_director.run(judged_task())
    assert report.exit_code == 99
    assert report.artifacts_dir is None and report.result_files == []


# --- keep ------------------------------------------------------------------------------------


def test_keep_on_failure_leaves_a_failed_run_up_and_tears_a_passing_one_down(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_exits(1)
    failed = atq_fake_director.run(task, keep="on_failure")
    assert failed.kept and failed.exit_code == 1
    assert atq_fake_cluster.services() == ["t1_master", "t1_worker"]
    assert [d["task"] for d in atq_fake_director.deploys] == ["t1"]
    atq_fake_director.teardown("t1")
    atq_fake_cluster.master_exits(0)
    passed = atq_fake_director.run(task, keep="on_failure")
    assert not passed.kept
    assert atq_fake_cluster.is_empty()


def test_keep_always_leaves_the_task_and_the_director_default_applies(task, atq_fake_cluster):
    director = atq.Director(atq_fake_cluster)
    assert director.run(task, keep="always").kept
    director.teardown("t1")
    atq_fake_cluster.master_exits(2)
    keeping = atq.Director(atq_fake_cluster, keep_on_failure=True)
    assert keeping.run(task).kept
    assert keeping.teardown_own() == ["t1"]
    assert not keeping.run(task, keep="never").kept
    assert atq_fake_cluster.is_empty()


def test_a_deploy_kept_on_failure_stays_and_is_a_deploy_of_its_director(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.missing_image("img")
    with pytest.raises(atq.ReplicaFailed):
        atq_fake_director.deploy(task, keep_on_failure=True)
    assert atq_fake_cluster.networks() == ["t1_net"]
    assert [d["task"] for d in atq_fake_director.deploys] == ["t1"]
    assert atq_fake_director.teardown_own() == ["t1"]
    assert atq_fake_cluster.is_empty()


def test_a_block_that_raises_keeps_its_task_when_the_director_keeps_on_failure(task, atq_fake_cluster, capsys):
    director = atq.Director(atq_fake_cluster, keep_on_failure=True)
    with pytest.raises(ZeroDivisionError):
        with director.deploy(task):
            1 / 0
    assert atq_fake_cluster.services() == ["t1_master", "t1_worker"]
    assert "t1: kept for debugging (the block raised)" in capsys.readouterr().err
    director.teardown("t1")
    with director.deploy(task):
        pass  # no exception: torn down
    assert atq_fake_cluster.is_empty()


def test_bad_run_options_name_the_argument(task, atq_fake_director):
    with pytest.raises(atq.ValidationError) as info:
        atq_fake_director.run(task, keep="sometimes")
    assert info.value.field == "keep"
    with pytest.raises(atq.ValidationError) as info:
        atq_fake_director.run(task, follow_logs="workers")
    assert info.value.field == "follow_logs"


# --- events and logs -------------------------------------------------------------------------


def test_progress_and_log_lines_reach_their_callbacks_with_times(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_exits(0, ["first", "second"])
    events, lines = [], []
    atq_fake_director.run(task, on_event=events.append, on_log=lines.append)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "network_created" and kinds[-1] == "torn_down"
    assert "master_exited" in kinds and "teardown_started" in kinds
    assert all(e["schema"] == 1 and e["time"].endswith("Z") for e in events)
    assert events[0]["deploy_id"]
    assert [(l["event"], l["role"], l["stream"], l["text"]) for l in lines] == [
        ("log", "master", "stdout", "first"),
        ("log", "master", "stdout", "second"),
    ]


def test_follow_logs_none_streams_no_line_but_the_outcome_keeps_them(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_exits(0, ["a", "b", "c", "d"])
    lines = []
    report = atq_fake_director.run(task, follow_logs="none", on_log=lines.append, log_tail=2)
    assert lines == []
    assert report.outcome.logs == "c\nd\n"


def test_a_run_timeout_is_a_deploy_timeout_of_phase_run(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_never_exits()
    with pytest.raises(atq.DeployTimeout) as info:
        atq_fake_director.run(task, timeout=0.2)
    assert info.value.phase == "run"
    assert atq_fake_cluster.is_empty()


def test_a_failed_deploy_raises_and_removes_what_it_made(task):
    fake = atq.FakeCluster(missing_images=["img"])
    with pytest.raises(atq.ReplicaFailed):
        atq.Director(fake).run(task)
    assert fake.is_empty()


def test_run_async_gives_the_same_report(task, atq_fake_cluster):
    atq_fake_cluster.master_exits(4, "bye")
    events = []

    async def main():
        director = atq.Director(atq_fake_cluster, on_event=events.append)
        return await director.run_async(task)

    report = asyncio.run(main())
    assert (report.exit_code, report.outcome.logs) == (4, "bye\n")
    assert "torn_down" in [e["event"] for e in events]
    assert atq_fake_cluster.is_empty()


# --- what a director deployed, and what it captured ------------------------------------------


def test_teardown_own_removes_only_this_directors_deploys(task, atq_fake_cluster):
    mine, theirs = atq.Director(atq_fake_cluster), atq.Director(atq_fake_cluster)
    kept = mine.deploy(task.renamed("mine"))
    assert [(d["task"], d["deploy_id"]) for d in mine.deploys] == [("mine", kept.deploy_id)]
    kept.keep()
    theirs.deploy(task.renamed("theirs")).keep()
    assert mine.teardown_own() == ["mine"]
    assert mine.deploys == []
    assert atq_fake_cluster.services() == ["theirs_master", "theirs_worker"]
    theirs.teardown_own()
    assert atq_fake_cluster.is_empty()


def test_teardown_own_never_touches_a_newer_task_of_the_same_name(task, atq_fake_cluster):
    """deploy A as `shared`, `atq down shared`, someone deploys B as `shared`: A's director's
    cleanup must leave B alone."""
    a, b = atq.Director(atq_fake_cluster), atq.Director(atq_fake_cluster)
    a.deploy(task.renamed("shared")).keep()
    b.teardown("shared")
    newer = b.deploy(task.renamed("shared"))
    assert a.teardown_own() == []
    assert atq_fake_cluster.services() == ["shared_master", "shared_worker"]
    assert not a.teardown_deploy("shared", "no-such-deploy")
    assert b.teardown_deploy("shared", newer.deploy_id)
    assert atq_fake_cluster.is_empty()
    newer.teardown()  # its objects are gone: nothing to do


def test_torn_down_deploys_leave_the_journal(task, atq_fake_director):
    atq_fake_director.run(task)
    with atq_fake_director.deploy(task.renamed("t2")):
        pass
    assert atq_fake_director.deploys == []


def test_a_capturing_director_keeps_the_last_lines_and_failed_results(tmp_path, atq_fake_cluster):
    director = atq.Director(atq_fake_cluster, capture=2)
    atq_fake_cluster.master_exits(0, ["1", "2", "3"])
    lines = []
    director.run(atq.Task("plain", worker=atq.Service("w"), master=atq.Service("m")), follow_logs="none", on_log=lines.append)
    assert lines == [], "the capture follows every log, but only what was asked reaches on_log"
    atq_fake_cluster.master_artifacts({"/atq/results/results.jtl": jtl_bytes(slow_from=90)})
    director.run(judged_task())
    captured = director.captured()
    assert captured["plain"]["master"] == "2\n3\n"
    assert captured["plain"]["results"] is None
    assert "FAIL  p95 < 500ms" in captured["judged"]["results"]
    with director.deploy(atq.Task("held", worker=atq.Service("w"), master=atq.Service("m"))) as d:
        d.wait()
    assert director.captured()["held"]["master"] == "2\n3\n", "read before the teardown"
    assert atq.Director(atq_fake_cluster).captured() == {}


def test_director_logs_reads_a_role_of_a_task(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_exits(0, ["x", "y", "z"])
    with atq_fake_director.deploy(task) as d:
        d.wait()
        assert atq_fake_director.logs("t1") == "x\ny\nz\n"
        assert atq_fake_director.logs("t1", "master", tail=1) == "z\n"
        with pytest.raises(atq.ValidationError):
            atq_fake_director.logs("t1", "boss")
    with pytest.raises(atq.TaskNotFound):
        atq_fake_director.logs("t1")


def test_prune_plan_says_what_prune_would_do(task, atq_fake_cluster, atq_fake_director):
    atq_fake_director.deploy(task).keep()
    [plan] = atq_fake_director.prune_plan()
    assert (plan["name"], plan["remove"]) == ("t1", False)
    assert plan["reason"]["reason"] == "owner_alive" and "still running" in plan["why"]
    assert atq_fake_director.prune() == {"tasks": []}
    atq_fake_director.teardown("t1")
