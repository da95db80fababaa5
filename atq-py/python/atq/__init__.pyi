"""Type stubs of atq (the Rust extension ``atq._atq``, re-exported by ``atq``)."""

import datetime
import builtins
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Optional, TypedDict, Union, final

from typing_extensions import Self

__version__: str

_Seconds = Union[int, float, datetime.timedelta]
_EventCallback = Callable[[dict[str, Any]], object]

# --- errors ----------------------------------------------------------------------------------

class AtqError(Exception):
    """Base class of every error atq raises."""

class ValidationError(AtqError):
    """The task breaks a rule; the message names the field."""

    field: str
    """The first problem's field (``worker.replicas``)."""
    problems: list[tuple[str, str]]
    """Every broken rule, as ``(field, message)``."""

class TaskExists(AtqError):
    """A task of this name already exists on the engine."""

    task: str

class TaskNotFound(AtqError):
    """No task of this name is on the engine."""

    task: str

class EngineError(AtqError):
    """The engine is unreachable, is not a swarm manager, or refused an operation."""

class DeployTimeout(AtqError):
    """A wait ran out of time (start timeout, wait command, ``Deployment.wait(timeout=...)``)."""

class ReplicaFailed(AtqError):
    """A replica failed to start or stopped unexpectedly."""

    service: str
    replica: str
    state: str
    reason: str

class DataError(AtqError):
    """A data bundle could not be read, stored or found."""

class ResultsError(AtqError):
    """Results files could not be read or merged."""

    path: Optional[str]
    """The file concerned, when there is one."""
    line: Optional[int]
    """The 1-based line of a malformed row, when there is one."""

# --- what to run -----------------------------------------------------------------------------

@final
class HealthCheck:
    """A container health check: a worker counts as ready once it passes."""

    def __new__(cls,
        test: str,
        *,
        interval: Optional[_Seconds] = None,
        timeout: Optional[_Seconds] = None,
        retries: Optional[int] = None,
        start_period: Optional[_Seconds] = None,
    ) -> Self: ...
    @property
    def test(self) -> str: ...

@final
class Resources:
    """CPU and memory limits of each replica."""

    def __new__(cls, *, cpus: Optional[float] = None, memory: Optional[int] = None) -> Self: ...
    @property
    def cpus(self) -> Optional[float]: ...
    @property
    def memory(self) -> Optional[int]: ...

@final
class Service:
    """One role's container spec (the workers' or the master's)."""

    def __new__(cls,
        image: str,
        *,
        replicas: int = 1,
        env: Optional[Mapping[str, str]] = None,
        args: Optional[Sequence[str]] = None,
        command: Optional[Sequence[str]] = None,
        tty: bool = False,
        alias: Optional[str] = None,
        data: Optional[str] = None,
        health_check: Optional[HealthCheck] = None,
        resources: Optional[Resources] = None,
        constraints: Optional[Sequence[str]] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> Self: ...
    @property
    def image(self) -> str: ...
    @property
    def replicas(self) -> int: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def args(self) -> list[str]: ...
    @property
    def command(self) -> Optional[list[str]]: ...
    @property
    def tty(self) -> bool: ...
    @property
    def alias(self) -> Optional[str]: ...
    @property
    def data(self) -> Optional[str]: ...
    @property
    def health_check(self) -> Optional[HealthCheck]: ...
    @property
    def resources(self) -> Optional[Resources]: ...
    @property
    def constraints(self) -> list[str]: ...
    @property
    def labels(self) -> dict[str, str]: ...

@final
class WaitCommand:
    """A probe run on the task network until its output matches, before the master starts."""

    def __new__(cls,
        command: str,
        *,
        expected_result: Optional[str] = None,
        timeout: Optional[_Seconds] = None,
        image: Optional[str] = None,
    ) -> Self: ...
    @property
    def command(self) -> str: ...
    @property
    def expected_result(self) -> Optional[str]: ...
    @property
    def timeout(self) -> float: ...
    @property
    def image(self) -> Optional[str]: ...

@final
class Task:
    """A validated task: name, workers, master, and options."""

    def __new__(cls,
        name: str,
        worker: Service,
        master: Service,
        *,
        wait_command: Optional[WaitCommand] = None,
        delay: Optional[_Seconds] = None,
        start_timeout: Optional[_Seconds] = None,
        run_timeout: Optional[_Seconds] = None,
        ttl: Optional[_Seconds] = None,
        labels: Optional[Mapping[str, str]] = None,
        artifacts: Optional[str] = None,
        results: Union[str, Mapping[str, str], None] = None,
        thresholds: Optional[Sequence[str]] = None,
    ) -> Self: ...
    @classmethod
    def from_yaml(cls, text: str) -> Task:
        """Reads a task file (YAML, ATQ-Director's field names)."""
    @classmethod
    def from_json(cls, text: str) -> Task:
        """Reads a task from JSON (ATQ-Director's payload)."""
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        """Reads a task from a dict shaped like ATQ-Director's payload."""
    def to_json(self) -> str: ...
    def to_yaml(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def renamed(self, name: str) -> Task: ...
    @property
    def name(self) -> str: ...
    @property
    def worker(self) -> Service: ...
    @property
    def master(self) -> Service: ...
    @property
    def wait_command(self) -> Optional[WaitCommand]: ...
    @property
    def delay(self) -> float: ...
    @property
    def start_timeout(self) -> float: ...
    @property
    def run_timeout(self) -> Optional[float]: ...
    @property
    def ttl(self) -> float: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def artifacts(self) -> Optional[str]: ...
    @property
    def results(self) -> Optional[dict[str, str]]: ...
    @property
    def thresholds(self) -> list[str]: ...

# --- engines ---------------------------------------------------------------------------------

@final
class FakeCluster:
    """An in-memory engine for unit tests."""

    def __new__(cls,
        *,
        latency: Optional[_Seconds] = None,
        master_exit_code: Optional[int] = None,
        master_logs: Union[str, Sequence[str], None] = None,
        missing_images: Optional[Sequence[str]] = None,
    ) -> Self: ...
    def set_latency(self, latency: _Seconds) -> None: ...
    def master_exits(self, code: int, logs: Union[str, Sequence[str], None] = None) -> None: ...
    def master_artifacts(self, files: Mapping[str, bytes]) -> None: ...
    def master_never_exits(self) -> None: ...
    def probe_output(self, code: int, output: str) -> None: ...
    def missing_image(self, image: str) -> None: ...
    def never_starts(self, image: str) -> None: ...
    def fail_call(self, kind: str, nth: int = 1) -> None: ...
    def kill_replica(self, service: str, slot: int, exit_code: int = 137) -> None: ...
    def is_empty(self) -> bool: ...
    def services(self) -> list[str]: ...
    def networks(self) -> list[str]: ...
    def service_env(self, name: str) -> Optional[dict[str, str]]: ...

@final
class DockerCluster:
    """A Docker engine in swarm mode, connected when created (raises ``EngineError``)."""

    def __new__(cls, host: Optional[str] = None) -> Self: ...

# --- running tasks ---------------------------------------------------------------------------

class _TaskInfo(TypedDict):
    # also `exit_code` (state "finished") or `reason` (state "failed")
    name: str
    state: Literal["deploying", "running", "finished", "failed"]
    workers_running: int
    workers_total: int
    workers: list[str]
    owner: Optional[str]
    expires: Optional[int]
    created: Optional[int]
    resources: list[dict[str, Any]]

class _PruneReport(TypedDict):
    tasks: list[str]
    resources: int

@final
class Outcome:
    """What the master did once it exited."""

    @property
    def task(self) -> str: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def logs(self) -> str: ...
    @property
    def failed_workers(self) -> list[dict[str, Any]]: ...
    @property
    def waited(self) -> float: ...
    @property
    def succeeded(self) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Deployment:
    """A deployed task; a (sync or async) context manager that tears it down on exit."""

    @property
    def name(self) -> str: ...
    @property
    def task(self) -> Task: ...
    @property
    def workers(self) -> list[str]: ...
    def wait(self, timeout: Optional[_Seconds] = None) -> Outcome: ...
    def wait_async(self, timeout: Optional[_Seconds] = None) -> Awaitable[Outcome]: ...
    def logs(self) -> str: ...
    def save_artifacts(self, dir: Union[str, "os.PathLike[str]"]) -> list[str]: ...
    def teardown(self) -> None: ...
    def teardown_async(self) -> Awaitable[None]: ...
    def keep(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(self, *exc: object) -> Awaitable[Optional[bool]]: ...

@final
class Director:
    """Runs tasks on a cluster."""

    def __new__(cls,
        cluster: Union[DockerCluster, FakeCluster],
        *,
        on_event: Optional[_EventCallback] = None,
        concurrency: Optional[int] = None,
    ) -> Self: ...
    def deploy(self, task: Task, *, on_event: Optional[_EventCallback] = None) -> Deployment: ...
    def deploy_async(self, task: Task, *, on_event: Optional[_EventCallback] = None) -> Awaitable[Deployment]: ...
    def run(self, task: Task, *, on_event: Optional[_EventCallback] = None) -> Outcome: ...
    def run_async(self, task: Task, *, on_event: Optional[_EventCallback] = None) -> Awaitable[Outcome]: ...
    def list(self) -> list[_TaskInfo]: ...
    def inspect(self, name: str) -> _TaskInfo: ...
    def teardown(self, name: str) -> None: ...
    def prune(self) -> _PruneReport: ...
    def prune_all(self) -> _PruneReport: ...
    def push_data(self, path: Union[str, "os.PathLike[str]"]) -> str: ...
    def data_bundles(self) -> builtins.list[dict[str, Any]]: ...
    def remove_data(self, id: str) -> None: ...

# --- results ---------------------------------------------------------------------------------

_PathLike = Union[str, "os.PathLike[str]"]

@final
class Results:
    """Results files (JMeter JTL CSV, Locust --csv, k6 CSV) read, merged and judged."""

    @classmethod
    def from_file(cls,
        path: _PathLike,
        *,
        thresholds: Optional[Sequence[str]] = None,
        format: str = "auto",
        strict: bool = False,
        title: Optional[str] = None,
    ) -> Results: ...
    @classmethod
    def from_files(cls,
        paths: Sequence[_PathLike],
        *,
        thresholds: Optional[Sequence[str]] = None,
        format: str = "auto",
        strict: bool = False,
        title: Optional[str] = None,
    ) -> Results: ...
    @property
    def passed(self) -> bool: ...
    @property
    def total(self) -> Optional[dict[str, Any]]: ...
    @property
    def labels(self) -> dict[str, dict[str, Any]]: ...
    @property
    def workers(self) -> dict[str, dict[str, Any]]: ...
    @property
    def verdicts(self) -> list[dict[str, Any]]: ...
    @property
    def series(self) -> Optional[dict[str, Any]]: ...
    @property
    def errors(self) -> list[dict[str, Any]]: ...
    @property
    def source(self) -> Optional[dict[str, Any]]: ...
    @property
    def problem(self) -> Optional[str]: ...
    def summary(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def table(self) -> str: ...
    def html(self) -> str: ...
    def junit_xml(self) -> str: ...
    def write_outputs(self, dir: _PathLike) -> list[str]: ...
    def exit_code(self, master_code: int = 0) -> int: ...
    def assert_passed(self) -> None: ...
    def __bool__(self) -> bool: ...
