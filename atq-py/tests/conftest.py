"""Shared helpers of the atq-py tests (the fixtures come from atq's own pytest plugin)."""

import pytest

import atq

# `pytester` runs pytest sessions inside a test: the plugin's own tests (test_plugin.py).
pytest_plugins = ["pytester"]


@pytest.fixture
def task() -> atq.Task:
    """A 3-worker task on a fake image."""
    return atq.Task("t1", worker=atq.Service("img", replicas=3), master=atq.Service("img"))
