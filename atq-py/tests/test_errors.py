"""Exceptions: a class per kind of core error, with the error's details as attributes."""

import pytest

import atq

ENGINE = ["EngineUnreachable", "EngineAddress", "EngineUnsuitable", "ObjectNotFound", "ObjectExists", "ObjectInUse"]
OTHERS = [
    "ValidationError",
    "TaskExists",
    "TaskNotFound",
    "EngineError",
    "DeployTimeout",
    "ProbeTimeout",
    "ReplicaFailed",
    "DataError",
    "ResultsError",
    "ArtifactsError",
    "ArtifactsNotFound",
    "UnsafeArtifact",
    "TeardownIncomplete",
]


@pytest.mark.parametrize("name", ENGINE + OTHERS)
def test_every_error_class_is_an_atq_error(name):
    cls = getattr(atq, name)
    assert issubclass(cls, atq.AtqError) and cls.__module__ == "atq"
    assert cls.__doc__
    if name in ENGINE:
        assert issubclass(cls, atq.EngineError)


def test_the_hierarchy_groups_related_errors():
    assert issubclass(atq.ProbeTimeout, atq.DeployTimeout)
    assert issubclass(atq.ArtifactsNotFound, atq.ArtifactsError)
    assert issubclass(atq.UnsafeArtifact, atq.ArtifactsError)
    assert not issubclass(atq.AtqError, KeyboardInterrupt)


def test_workers_that_never_start_are_a_timeout_of_phase_workers(atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.never_starts("slow")
    task = atq.Task("t", worker=atq.Service("slow", replicas=2), master=atq.Service("m"), start_timeout=0.2)
    with pytest.raises(atq.DeployTimeout) as info:
        atq_fake_director.deploy(task)
    assert type(info.value) is atq.DeployTimeout
    assert info.value.phase == "workers"
    assert 0.2 <= info.value.waited < 10
    assert "0/2" in info.value.missing or "running" in info.value.missing


def test_a_probe_that_never_passes_is_a_probe_timeout(atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.probe_output(1, "not yet")
    task = atq.Task(
        "t", worker=atq.Service("w"), master=atq.Service("m"), wait_command=atq.WaitCommand("x", timeout=0.2)
    )
    with pytest.raises(atq.ProbeTimeout) as info:
        atq_fake_director.deploy(task)
    assert info.value.phase == "probe"
    assert info.value.attempts >= 1
    assert "not yet" in info.value.last
    assert isinstance(info.value.waited, float)


def test_a_wait_that_runs_out_is_a_timeout_of_phase_run(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.master_never_exits()
    with atq_fake_director.deploy(task) as d:
        with pytest.raises(atq.DeployTimeout) as info:
            d.wait(timeout=0.1)
    assert info.value.phase == "run"


def test_names_of_tasks_taken_or_missing(task, atq_fake_director):
    with atq_fake_director.deploy(task):
        with pytest.raises(atq.TaskExists) as exists:
            atq_fake_director.deploy(task)
    assert exists.value.task == "t1"
    with pytest.raises(atq.TaskNotFound) as missing:
        atq_fake_director.teardown("t1")
    assert missing.value.task == "t1"


def test_an_engine_failure_names_the_operation_and_the_object(task, atq_fake_cluster, atq_fake_director):
    atq_fake_cluster.fail_call("create_service")
    with pytest.raises(atq.EngineError) as info:
        atq_fake_director.deploy(task)
    assert (info.value.operation, info.value.resource) == ("create service", "t1_worker")
    assert atq_fake_cluster.is_empty()


def test_a_half_failed_teardown_names_what_is_left_and_a_retry_removes_it(task, atq_fake_cluster, atq_fake_director):
    d = atq_fake_director.deploy(task)
    atq_fake_cluster.fail_call("remove_service")
    with pytest.raises(atq.TeardownIncomplete) as info:
        d.teardown()
    err = info.value
    assert err.task == "t1"
    assert "network t1_net" in err.left and any(left.startswith("service ") for left in err.left)
    assert isinstance(err.cause, atq.EngineError) and err.__cause__ is err.cause
    assert [x["task"] for x in atq_fake_director.deploys] == ["t1"], "still this director's to remove"
    d.teardown()
    assert atq_fake_cluster.is_empty()
    assert atq_fake_director.deploys == []


def test_a_master_that_wrote_no_artifacts_raises_artifacts_not_found(tmp_path, atq_fake_director):
    task = atq.Task("none", worker=atq.Service("w"), master=atq.Service("m"), artifacts="/atq/results")
    with atq_fake_director.deploy(task) as d:
        d.wait(timeout=5)
        with pytest.raises(atq.ArtifactsNotFound) as info:
            d.save_artifacts(tmp_path)
    assert info.value.path == "/atq/results"
    assert "ATQ_RESULTS_DIR" in str(info.value)


def test_data_errors_name_the_entry_or_the_bundle(tmp_path, atq_fake_director):
    (tmp_path / "link").symlink_to("/etc/passwd")
    with pytest.raises(atq.DataError) as refused:
        atq_fake_director.push_data(tmp_path)
    assert refused.value.entry == "link" and refused.value.id is None
    with pytest.raises(atq.DataError) as missing:
        atq_fake_director.remove_data("0123456789abcdef")
    assert missing.value.id == "0123456789abcdef"


def test_a_replica_that_fails_names_service_replica_state_and_reason(task):
    with pytest.raises(atq.ReplicaFailed) as info:
        atq.Director(atq.FakeCluster(missing_images=["img"])).deploy(task)
    err = info.value
    assert err.service == "t1_worker" and err.replica.startswith("t1_worker.")
    assert err.state == "rejected" and "No such image" in err.reason
