"""pytest plugin of atq (entry point ``pytest11``): cluster fixtures.

- ``atq_director``: a ``Director`` on the real Docker engine (``DockerCluster()``). The test is
  skipped, with the engine's message, when no swarm manager is reachable, unless the
  environment sets ``ATQ_REQUIRE_ENGINE=1`` (CI does): then it fails.
- ``atq_fake_cluster`` and ``atq_fake_director``: an in-memory ``FakeCluster`` and a
  ``Director`` driving it, fresh for each test.

Tasks a test leaves behind are removed when it ends (``prune_all`` on the fake; on the real
engine, ``teardown`` of each task this test's director still lists as its own).
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

import atq


def _engine_required() -> bool:
    return os.environ.get("ATQ_REQUIRE_ENGINE", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def atq_docker_cluster() -> atq.DockerCluster:
    """The real engine (``DOCKER_HOST`` or the local socket), connected once per session."""
    try:
        return atq.DockerCluster()
    except atq.EngineError as e:
        reason = str(e)
    if _engine_required():
        pytest.fail(f"ATQ_REQUIRE_ENGINE is set but no Docker swarm engine is reachable: {reason}", pytrace=False)
    pytest.skip(f"no Docker swarm engine reachable (set ATQ_REQUIRE_ENGINE=1 to fail instead): {reason}")


@pytest.fixture
def atq_director(atq_docker_cluster: atq.DockerCluster) -> Iterator[atq.Director]:
    """A ``Director`` on the real engine; tasks the test leaves deployed are torn down after it."""
    director = atq.Director(atq_docker_cluster)
    before = {t["name"] for t in director.list()}
    yield director
    for t in director.list():
        if t["name"] not in before:
            try:
                director.teardown(t["name"])
            except atq.TaskNotFound:
                pass


@pytest.fixture
def atq_fake_cluster() -> atq.FakeCluster:
    """A fresh in-memory engine: script it (``master_exits``, ``missing_image``, ...) and
    inspect it (``is_empty()``, ``services()``)."""
    return atq.FakeCluster()


@pytest.fixture
def atq_fake_director(atq_fake_cluster: atq.FakeCluster) -> Iterator[atq.Director]:
    """A ``Director`` driving ``atq_fake_cluster``."""
    director = atq.Director(atq_fake_cluster)
    yield director
    director.prune_all()
