"""Shared helpers of the atq-py tests (the other fixtures come from atq's own pytest plugin)."""

import os

import pytest

import atq

# `pytester` runs pytest sessions inside a test: the plugin's own tests (test_plugin.py).
pytest_plugins = ["pytester"]


@pytest.fixture
def task() -> atq.Task:
    """A 3-worker task on a fake image."""
    return atq.Task("t1", worker=atq.Service("img", replicas=3), master=atq.Service("img"))


def _engine_required() -> bool:
    return os.environ.get("ATQ_REQUIRE_ENGINE", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session", params=["swarm", "docker"])
def atq_docker_cluster(request: pytest.FixtureRequest) -> atq.DockerCluster:
    """The real engine once per backend (overrides the plugin's): every engine test runs on
    Docker Swarm and on the plain Docker backend."""
    try:
        return atq.DockerCluster(engine=request.param)
    except atq.EngineError as e:
        reason = str(e)
    if _engine_required():
        pytest.fail(f"ATQ_REQUIRE_ENGINE is set but the {request.param} backend cannot run: {reason}", pytrace=False)
    pytest.skip(f"the {request.param} backend cannot run here: {reason}")
