"""The pytest plugin, on FakeCluster, through pytest sessions run inside these tests (pytester):
logs and results in a failed test's report, keep-on-failure, the deployment fixture's scope, a
fixture removing only its own test's tasks, unique names."""

import re
import sys
import types

import pytest

import atq

SHARED = "atq_shared_fake_for_plugin_tests"

# The inner sessions' conftest: `atq_fake_cluster` and `atq_deployment_director` on the fake the
# outer test shares through a module (inline runs share the process).
CONFTEST = f"""
import sys
import pytest
import atq
from atq.pytest_plugin import keep_on_failure, log_lines

@pytest.fixture(scope="session")
def atq_fake_cluster():
    return sys.modules["{SHARED}"].fake

@pytest.fixture(scope="session")
def atq_deployment_director(request, atq_fake_cluster):
    return atq.Director(atq_fake_cluster, keep_on_failure=keep_on_failure(request.config), capture=log_lines(request.config))

@pytest.fixture(scope="session")
def atq_task():
    return atq.Task("dep", worker=atq.Service("w", replicas=2), master=atq.Service("m"))
"""


@pytest.fixture
def shared_fake(monkeypatch, pytester):
    fake = atq.FakeCluster()
    monkeypatch.setitem(sys.modules, SHARED, types.SimpleNamespace(fake=fake))
    monkeypatch.delenv("ATQ_KEEP_ON_FAILURE", raising=False)
    pytester.makeconftest(CONFTEST)
    return fake


def test_a_failed_tests_report_carries_the_masters_last_lines(pytester, shared_fake):
    shared_fake.master_exits(1, [f"line {i}" for i in range(1, 9)] + ["boom: the plan failed"])
    pytester.makepyfile(
        """
        import atq
        def test_load(atq_fake_director):
            task = atq.Task("lt", worker=atq.Service("w"), master=atq.Service("m"))
            report = atq_fake_director.run(task)
            assert report.passed
        """
    )
    result = pytester.runpytest("--atq-log-lines", "3")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "atq lt: master (last 3 lines)" in out
    assert "boom: the plan failed" in out and "line 7" in out and "line 6" not in out
    # The assertion message shows why the run failed (pytest prints the report's repr).
    assert 'failure="the master exited with code 1"' in out
    assert shared_fake.is_empty()


def test_failed_thresholds_show_in_the_failure_message_and_the_report(pytester, shared_fake):
    rows = "\n".join(f"{1_700_000_000_000 + i},{900 if i > 50 else 5},home,200,true,10,w1" for i in range(100))
    jtl = ("timeStamp,elapsed,label,responseCode,success,bytes,Hostname\n" + rows + "\n").encode()
    shared_fake.master_artifacts({"/atq/results/results.jtl": jtl})
    pytester.makepyfile(
        """
        import atq
        def test_load(atq_fake_director):
            task = atq.Task("th", worker=atq.Service("w"), master=atq.Service("m"), artifacts="/atq/results",
                            results="results.jtl", thresholds=["p95 < 500ms"])
            atq_fake_director.run(task).assert_passed()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "AssertionError: run of th failed (exit code 99): 1 threshold(s) failed: p95 < 500ms" in out
    assert "atq th: results" in out and "FAIL  p95 < 500ms" in out


def test_a_passing_test_gets_no_atq_sections(pytester, shared_fake):
    pytester.makepyfile(
        """
        import atq
        def test_load(atq_fake_director):
            assert atq_fake_director.run(atq.Task("ok", worker=atq.Service("w"), master=atq.Service("m"))).passed
        """
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=1)
    assert "atq ok:" not in result.stdout.str()


FAILING_WITH_DEPLOYMENT = """
def test_uses_the_deployment(atq_deployment):
    assert atq_deployment.name.startswith("dep-")
    assert False, "this test fails"
"""


def test_keep_on_failure_keeps_what_a_failed_test_deployed_and_lists_it(pytester, shared_fake):
    pytester.makepyfile(FAILING_WITH_DEPLOYMENT)
    result = pytester.runpytest("--atq-keep-on-failure")
    result.assert_outcomes(failed=1)
    [kept] = [n for n in shared_fake.networks()]
    name = kept.removesuffix("_net")
    assert re.fullmatch(r"dep-main-[0-9a-f]{6}-\d+", name), name
    out = result.stdout.str()
    assert "atq: kept for debugging" in out and f"{name}: `atq logs {name}`, `atq down {name}` removes it" in out
    atq.Director(shared_fake).teardown(name)


def test_keep_on_failure_from_the_environment(pytester, shared_fake, monkeypatch):
    monkeypatch.setenv("ATQ_KEEP_ON_FAILURE", "1")
    pytester.makepyfile(FAILING_WITH_DEPLOYMENT)
    pytester.runpytest().assert_outcomes(failed=1)
    assert len(shared_fake.networks()) == 1
    atq.Director(shared_fake).prune_all()


def test_without_the_switch_a_failed_tests_deployment_is_removed(pytester, shared_fake):
    pytester.makepyfile(FAILING_WITH_DEPLOYMENT)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert "kept for debugging" not in result.stdout.str()
    assert shared_fake.is_empty()


def test_a_kept_run_of_a_failed_test_stays_under_the_switch(pytester, shared_fake):
    shared_fake.master_exits(3, "failing master")
    pytester.makepyfile(
        """
        import atq, pytest
        from atq.pytest_plugin import keep_on_failure

        @pytest.fixture
        def director(request, atq_fake_cluster):
            d = atq.Director(atq_fake_cluster, keep_on_failure=keep_on_failure(request.config))
            yield d

        def test_run(director):
            report = director.run(atq.Task("kr", worker=atq.Service("w"), master=atq.Service("m")))
            assert report.kept
            assert report.passed
        """
    )
    pytester.runpytest("--atq-keep-on-failure").assert_outcomes(failed=1)
    assert shared_fake.services() == ["kr_master", "kr_worker"]
    atq.Director(shared_fake).teardown("kr")


SCOPE_TESTS = """
names = []

def test_one(atq_deployment):
    names.append(atq_deployment.name)

def test_two(atq_deployment):
    names.append(atq_deployment.name)

def test_compare():
    print("DEPLOYMENTS", len(set(names)))
"""


@pytest.mark.parametrize(("option", "expected"), [(None, 1), ("function", 2), ("session", 1)])
def test_the_deployment_fixtures_scope_is_configurable(pytester, shared_fake, option, expected):
    pytester.makepyfile(SCOPE_TESTS)
    args = ["-s"] + ([f"--atq-deployment-scope={option}"] if option else [])
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)
    assert f"DEPLOYMENTS {expected}" in result.stdout.str()
    assert shared_fake.is_empty()


def test_the_deployment_scope_from_the_ini_file(pytester, shared_fake):
    pytester.makeini("[pytest]\natq_deployment_scope = function\n")
    pytester.makepyfile(SCOPE_TESTS)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=3)
    assert "DEPLOYMENTS 2" in result.stdout.str()


def test_a_fixture_removes_only_what_its_own_test_deployed(pytester, shared_fake):
    """Another process's task (here: another director on the same engine) that appears while a
    test runs survives the test's fixture; the test's own kept task does not."""
    pytester.makepyfile(
        """
        import atq

        def test_deploys_its_own_and_sees_another(atq_fake_cluster, atq_fake_director):
            atq_fake_director.deploy(atq.Task("mine", worker=atq.Service("w"), master=atq.Service("m"))).keep()
            other = atq.Director(atq_fake_cluster)
            other.deploy(atq.Task("theirs", worker=atq.Service("w"), master=atq.Service("m"))).keep()

        def test_after(atq_fake_cluster):
            assert atq_fake_cluster.services() == ["theirs_master", "theirs_worker"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    atq.Director(shared_fake).teardown("theirs")


def test_unique_names_are_valid_distinct_and_name_the_xdist_worker(monkeypatch):
    from atq.pytest_plugin import unique_name

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    names = {unique_name("load test!") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert re.fullmatch(r"load-test-gw7-[0-9a-f]{6}-\d+", name), name
        atq.Task(name, worker=atq.Service("w"), master=atq.Service("m"))  # a valid task name
    long = unique_name("x" * 200)
    atq.Task(long, worker=atq.Service("w"), master=atq.Service("m"))


def test_atq_task_must_be_defined_for_the_deployment(pytester, monkeypatch):
    monkeypatch.setitem(sys.modules, SHARED, types.SimpleNamespace(fake=atq.FakeCluster()))
    pytester.makeconftest(CONFTEST.split("@pytest.fixture(scope=\"session\")\ndef atq_task")[0])
    pytester.makepyfile("def test_x(atq_deployment):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert "define a fixture `atq_task`" in result.stdout.str()
