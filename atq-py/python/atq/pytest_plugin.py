"""pytest plugin of atq (entry point ``pytest11``): cluster fixtures.

Fixtures:

- ``atq_director``: a ``Director`` on the real Docker engine (``DockerCluster()``). The test is
  skipped, with the engine's message, when no Docker engine is reachable, unless the
  environment sets ``ATQ_REQUIRE_ENGINE=1`` (CI does): then it fails. When the test ends, the
  fixture removes what its own deploys left (kept tasks, failed teardowns), selected by deploy
  id: never a task another test, process or xdist worker deployed, even one of the same name.
- ``atq_fake_cluster`` and ``atq_fake_director``: an in-memory ``FakeCluster`` and a
  ``Director`` driving it, fresh for each test.
- ``atq_name``: ``atq_name("load")`` gives a task name unique across processes, machines and
  xdist workers (``load-gw1-3f2a9c-1``).
- ``atq_deployment``: a ``Deployment`` of the task the fixture ``atq_task`` returns (define it,
  session-scoped: ``@pytest.fixture(scope="session") def atq_task(): return atq.Task(...)``),
  renamed with ``atq_name``, deployed once per scope and torn down after it. The scope is
  ``module`` unless ``--atq-deployment-scope`` or the ini option ``atq_deployment_scope`` says
  ``session`` or ``function``. It deploys with ``atq_deployment_director`` (the real engine;
  override it to use a fake).

Options:

- ``--atq-keep-on-failure`` (or ``ATQ_KEEP_ON_FAILURE=1``, or the ini option
  ``atq_keep_on_failure = true``): what a failed test deployed stays on the engine for
  debugging — failed runs, failed deploys, a ``with`` block that raised, the fixtures' tasks —
  and the session ends by listing it (``atq down NAME`` removes each).
- ``--atq-log-lines N`` (ini ``atq_log_lines``, default 50; 0: off): a failed test's report gets,
  for each task its atq fixtures ran, the master's and the workers' last N lines and the results
  table of a run whose thresholds failed.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Optional, cast

import pytest

import atq

if TYPE_CHECKING:
    _Scope = Literal["session", "package", "module", "class", "function"]
_SCOPES = ("session", "package", "module", "class", "function")
# This test failed (setup or call).
_failed_key = pytest.StashKey[bool]()
# Deploy ids of atq_deployment fixtures a failed test used.
_failed_deploys_key = pytest.StashKey[set]()
# Tasks kept by fixtures since the last test report (handed to the next teardown report, which
# reaches the controlling process under xdist too).
_pending_kept_key = pytest.StashKey[list]()



def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _engine_required() -> bool:
    return _truthy(os.environ.get("ATQ_REQUIRE_ENGINE"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("atq", "atq load-test clusters")
    group.addoption(
        "--atq-keep-on-failure",
        action="store_true",
        default=None,
        help="leave what a failed test deployed on the engine for debugging (also ATQ_KEEP_ON_FAILURE=1)",
    )
    group.addoption(
        "--atq-deployment-scope",
        choices=("session", "module", "function"),
        default=None,
        help="scope of the atq_deployment fixture (default: the ini option atq_deployment_scope, else module)",
    )
    group.addoption(
        "--atq-log-lines",
        type=int,
        default=None,
        help="log lines per role of each task attached to a failed test's report (default 50; 0: none)",
    )
    parser.addini("atq_keep_on_failure", "leave what a failed test deployed on the engine", type="bool", default=False)
    parser.addini("atq_deployment_scope", "scope of the atq_deployment fixture", default="module")
    parser.addini("atq_log_lines", "log lines per role attached to a failed test's report", default="50")


def keep_on_failure(config: pytest.Config) -> bool:
    """Whether what a failed test deployed stays on the engine (the option, the environment
    variable ``ATQ_KEEP_ON_FAILURE`` or the ini option)."""
    if config.getoption("atq_keep_on_failure"):
        return True
    if "ATQ_KEEP_ON_FAILURE" in os.environ:
        return _truthy(os.environ["ATQ_KEEP_ON_FAILURE"])
    return bool(config.getini("atq_keep_on_failure"))


def log_lines(config: pytest.Config) -> int:
    """How many log lines per role a failed test's report gets."""
    value = config.getoption("atq_log_lines")
    if value is None:
        try:
            value = int(config.getini("atq_log_lines"))
        except ValueError:
            raise pytest.UsageError("the ini option atq_log_lines must be a number of lines") from None
    if value < 0:
        raise pytest.UsageError("--atq-log-lines must be 0 or more")
    return value


def _deployment_scope(fixture_name: str, config: pytest.Config) -> _Scope:
    scope = config.getoption("atq_deployment_scope") or config.getini("atq_deployment_scope") or "module"
    if scope not in _SCOPES:
        raise pytest.UsageError(f"atq_deployment_scope must be one of {', '.join(_SCOPES)}, not {scope!r}")
    return cast("_Scope", scope)


# --- names -----------------------------------------------------------------------------------

_TOKEN = secrets.token_hex(3)
_COUNTER = itertools.count(1)
# Room for the suffix within a task name's length limit (engine names are `<name>_<alias>`).
_MAX_PREFIX = 24


def unique_name(prefix: str = "atq") -> str:
    """A task name unique across processes, machines and xdist workers: ``prefix``, the xdist
    worker (``gw1``, or ``main``), a random token of this process and a counter."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", prefix).strip("-_")[:_MAX_PREFIX].strip("-_") or "atq"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    worker = re.sub(r"[^A-Za-z0-9]+", "", worker) or "main"
    return f"{cleaned}-{worker}-{_TOKEN}-{next(_COUNTER)}"


@pytest.fixture(scope="session")
def atq_name() -> Callable[[str], str]:
    """``atq_name("load")``: a task name unique across processes and xdist workers
    (``load-gw1-3f2a9c-1``); use it with ``task.renamed(atq_name(task.name))``."""
    return unique_name


# --- engines and directors -------------------------------------------------------------------


@pytest.fixture(scope="session")
def atq_docker_cluster() -> atq.DockerCluster:
    """The real engine (``DOCKER_HOST`` or the local socket), connected once per session."""
    try:
        return atq.DockerCluster()
    except atq.EngineError as e:
        reason = str(e)
    if _engine_required():
        pytest.fail(f"ATQ_REQUIRE_ENGINE is set but no Docker engine is reachable: {reason}", pytrace=False)
    pytest.skip(f"no Docker engine reachable (set ATQ_REQUIRE_ENGINE=1 to fail instead): {reason}")


def _director(config: pytest.Config, cluster: Any, *, keep: bool) -> atq.Director:
    return atq.Director(cluster, keep_on_failure=keep, capture=log_lines(config))


def _finish(request: pytest.FixtureRequest, director: atq.Director) -> None:
    """At the end of a fixture's life: keep what a failed test deployed (when asked), else remove
    what the director's own deploys left."""
    if keep_on_failure(request.config) and request.node.stash.get(_failed_key, False):
        request.config.stash.setdefault(_pending_kept_key, []).extend(_own_on_engine(director))
        return
    director.teardown_own()


def _own_on_engine(director: atq.Director) -> list[str]:
    """The names of the director's own deploys that are on the engine."""
    mine = {d["deploy_id"]: d["task"] for d in director.deploys}
    if not mine:
        return []
    on_engine = set()
    for task in director.list():
        for resource in task.get("resources", []):
            deploy_id = (resource.get("labels") or {}).get("io.atq.deploy")
            if deploy_id in mine:
                on_engine.add(mine[deploy_id])
    return sorted(on_engine)


@pytest.fixture
def atq_director(request: pytest.FixtureRequest, atq_docker_cluster: atq.DockerCluster) -> Iterator[atq.Director]:
    """A ``Director`` on the real engine. After the test it removes what its own deploys left
    (by deploy id; nothing anyone else deployed), unless the test failed under
    ``--atq-keep-on-failure``."""
    director = _director(request.config, atq_docker_cluster, keep=keep_on_failure(request.config))
    yield director
    _finish(request, director)


@pytest.fixture
def atq_fake_cluster() -> atq.FakeCluster:
    """A fresh in-memory engine: script it (``master_exits``, ``missing_image``, ...) and
    inspect it (``is_empty()``, ``services()``)."""
    return atq.FakeCluster()


@pytest.fixture
def atq_fake_director(request: pytest.FixtureRequest, atq_fake_cluster: atq.FakeCluster) -> Iterator[atq.Director]:
    """A ``Director`` driving ``atq_fake_cluster``; what its deploys left is removed after the test."""
    director = _director(request.config, atq_fake_cluster, keep=False)
    yield director
    director.teardown_own()


# --- a deployment for a scope ----------------------------------------------------------------


@pytest.fixture(scope="session")
def atq_task() -> atq.Task:
    """The task ``atq_deployment`` deploys: override this fixture (session-scoped)."""
    pytest.fail(
        "atq_deployment needs the task to deploy: define a fixture `atq_task` returning an atq.Task "
        '(for example in conftest.py: @pytest.fixture(scope="session") def atq_task(): return atq.Task(...))',
        pytrace=False,
    )


@pytest.fixture(scope="session")
def atq_deployment_director(request: pytest.FixtureRequest, atq_docker_cluster: atq.DockerCluster) -> atq.Director:
    """The ``Director`` ``atq_deployment`` deploys with: the real engine (override it, session-scoped,
    to deploy on a fake)."""
    return _director(request.config, atq_docker_cluster, keep=keep_on_failure(request.config))


@pytest.fixture(scope=_deployment_scope)
def atq_deployment(
    request: pytest.FixtureRequest,
    atq_deployment_director: atq.Director,
    atq_task: atq.Task,
    atq_name: Callable[[str], str],
) -> Iterator[atq.Deployment]:
    """``atq_task`` deployed under a unique name (``atq_deployment.name``) for the fixture's scope
    (``--atq-deployment-scope``), torn down after it — kept instead under
    ``--atq-keep-on-failure`` when a test that used it failed."""
    deployment = atq_deployment_director.deploy(atq_task.renamed(atq_name(atq_task.name)))
    yield deployment
    failed = request.config.stash.get(_failed_deploys_key, set())
    if keep_on_failure(request.config) and deployment.deploy_id in failed:
        deployment.keep()
        request.config.stash.setdefault(_pending_kept_key, []).append(deployment.name)
    else:
        deployment.teardown()


# --- reports ---------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    pending = item.config.stash.get(_pending_kept_key, [])
    if report.when == "teardown" and pending:
        report.user_properties.append(("atq_kept", list(pending)))
        pending.clear()
    if report.failed and report.when in ("setup", "call"):
        item.stash[_failed_key] = True
        try:
            _attach_diagnostics(item, report)
        except Exception as e:  # a report must never fail because of atq
            report.sections.append(("atq", f"could not collect the tasks' logs: {e!r}"))
    return report


def _attach_diagnostics(item: pytest.Item, report: pytest.TestReport) -> None:
    lines = log_lines(item.config)
    values = list(getattr(item, "funcargs", {}).values())
    directors = list({id(v): v for v in values if isinstance(v, atq.Director)}.values())
    deployments = [v for v in values if isinstance(v, atq.Deployment)]
    for deployment in deployments:
        item.config.stash.setdefault(_failed_deploys_key, set()).add(deployment.deploy_id)
    if lines > 0:
        for director in directors:
            for task, text in _diagnostics(director, [d.name for d in deployments], lines):
                report.sections.append((task, text))
    if keep_on_failure(item.config):
        kept = sorted({name for director in directors for name in _own_on_engine(director)})
        if kept:
            report.sections.append(("atq", f"kept for debugging (--atq-keep-on-failure): {', '.join(kept)}"))


def _diagnostics(director: atq.Director, deployed: list[str], lines: int) -> list[tuple[str, str]]:
    """(title, text) sections for a failed test: what ``director`` captured of its tasks, and the
    last lines of those still on the engine, read now."""
    captured: dict[str, dict[str, str]] = {}
    for task, kept in director.captured().items():
        captured[task] = {"master": kept["master"], "workers": kept["workers"], "results": kept["results"] or ""}
    live = {d["task"] for d in director.deploys} | set(deployed)
    for task in live:
        entry = captured.setdefault(task, {"master": "", "workers": "", "results": ""})
        for role, key in (("master", "master"), ("worker", "workers")):
            try:
                text = director.logs(task, cast(Literal["master", "worker"], role), tail=lines)
            except atq.AtqError:
                continue
            if text:
                entry[key] = text
    sections = []
    for task, entry in captured.items():
        if entry["results"]:
            sections.append((f"atq {task}: results", entry["results"]))
        for key in ("master", "workers"):
            text = _last(entry[key], lines)
            if text:
                sections.append((f"atq {task}: {key} (last {lines} lines)", text))
    return sections


def _last(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_KeptTasks(), "atq-kept-tasks")


class _KeptTasks:
    """Collects the tasks fixtures kept, from the test reports (so under xdist the controlling
    process hears of the workers' too), and lists them at the end of the session."""

    def __init__(self) -> None:
        self.kept: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == "atq_kept":
                self.kept.extend(name for name in cast("list[str]", value) if name not in self.kept)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.kept:
            terminalreporter.section("atq: kept for debugging")
            for name in self.kept:
                terminalreporter.write_line(f"{name}: `atq logs {name}`, `atq down {name}` removes it")
