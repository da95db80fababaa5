"""Ctrl-C follows the core's protocol, on FakeCluster: the first interrupt stops what runs and
removes it, saying so; the call then raises KeyboardInterrupt. (A second Ctrl-C, which needs a
teardown slow enough to interrupt, is tested on the real engine in test_engine.py.)"""

import _thread
import threading

import pytest

import atq


def interrupt_when(events, kind):
    """An on_event callback recording events that interrupts the main thread once `kind` comes."""
    fired = threading.Event()

    def on_event(event):
        events.append(event)
        if event["event"] == kind and not fired.is_set():
            fired.set()
            threading.Timer(0.05, _thread.interrupt_main).start()

    return on_event


def test_ctrl_c_during_a_run_tears_down_says_so_and_raises(task, atq_fake_cluster):
    atq_fake_cluster.master_never_exits()
    events = []
    director = atq.Director(atq_fake_cluster, on_event=interrupt_when(events, "master_running"))
    with pytest.raises(KeyboardInterrupt) as info:
        director.run(task)
    assert info.value.abandoned is False
    assert "what was deployed has been removed" in str(info.value)
    kinds = [e["event"] for e in events]
    after = kinds[kinds.index("master_running") + 1 :]
    assert after == ["interrupted", "teardown_started", "torn_down"], kinds
    assert atq_fake_cluster.is_empty()


def test_without_a_callback_an_interrupt_says_so_on_stderr(task, atq_fake_cluster, capsys):
    atq_fake_cluster.master_never_exits()
    director = atq.Director(atq_fake_cluster)
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        director.run(task)
    err = capsys.readouterr().err
    assert "atq: t1: interrupted: removing what was deployed (Ctrl-C again to stop waiting)" in err
    assert atq_fake_cluster.is_empty()


def test_ctrl_c_during_a_wait_tears_down_and_the_block_has_nothing_left_to_do(task, atq_fake_cluster):
    atq_fake_cluster.master_never_exits()
    events = []
    director = atq.Director(atq_fake_cluster, on_event=events.append)
    with pytest.raises(KeyboardInterrupt) as info:
        with director.deploy(task) as d:
            threading.Timer(0.2, _thread.interrupt_main).start()
            d.wait()
    assert info.value.abandoned is False
    kinds = [e["event"] for e in events]
    assert kinds[kinds.index("master_running") + 1 :] == ["interrupted", "teardown_started", "torn_down"]
    assert atq_fake_cluster.is_empty()
    assert director.deploys == []


def test_ctrl_c_in_the_users_code_inside_a_block_tears_down_as_a_first_interrupt(task, atq_fake_cluster):
    events = []
    director = atq.Director(atq_fake_cluster, on_event=events.append)
    with pytest.raises(KeyboardInterrupt) as info:
        with director.deploy(task):
            raise KeyboardInterrupt("the user's own")
    assert str(info.value) == "the user's own", "the block's interrupt goes on"
    kinds = [e["event"] for e in events]
    assert kinds[-3:] == ["interrupted", "teardown_started", "torn_down"], kinds
    assert atq_fake_cluster.is_empty()


def test_ctrl_c_during_a_deploy_rolls_it_back(task):
    fake = atq.FakeCluster(latency=30)
    events = []
    director = atq.Director(fake, on_event=interrupt_when(events, "workers_created"))
    with pytest.raises(KeyboardInterrupt):
        director.deploy(task)
    kinds = [e["event"] for e in events]
    assert kinds[-3:] == ["interrupted", "teardown_started", "torn_down"], kinds
    assert fake.is_empty()


def test_an_interrupt_is_not_an_exception_that_except_exception_swallows(task, atq_fake_cluster):
    atq_fake_cluster.master_never_exits()
    threading.Timer(0.2, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        try:
            atq.Director(atq_fake_cluster).run(task)
        except Exception:  # noqa: BLE001 - the point of the test
            pytest.fail("a Ctrl-C was caught as an Exception")


def test_a_callback_that_raises_stops_the_run_like_an_interrupt(task, atq_fake_cluster):
    atq_fake_cluster.master_never_exits()
    seen = []

    def boom(event):
        seen.append(event["event"])
        if event["event"] == "master_running":
            raise RuntimeError("my callback failed")

    with pytest.raises(RuntimeError, match="my callback failed"):
        atq.Director(atq_fake_cluster, on_event=boom).run(task)
    assert seen[-1] == "master_running", "a broken callback is not called again"
    assert atq_fake_cluster.is_empty()


def test_a_log_callback_that_raises_stops_the_run_too(task, atq_fake_cluster):
    atq_fake_cluster.master_exits(0, ["a", "b"])

    def bad(line):
        raise ValueError(line["text"])

    with pytest.raises(ValueError, match="^a$"):
        atq.Director(atq_fake_cluster).run(task, on_log=bad)
    assert atq_fake_cluster.is_empty()


def test_a_dropped_deployment_is_a_pending_cleanup_until_removed(task, atq_fake_cluster):
    director = atq.Director(atq_fake_cluster)
    director.deploy(task)  # dropped at once: removed on atq's cleanup thread
    assert atq.wait_for_cleanups(10)
    assert atq.pending_cleanups() == 0
    assert atq_fake_cluster.is_empty()
