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
_FollowLogs = Literal["none", "master", "all"]
_Keep = Literal["never", "always", "on_failure"]

# --- errors ----------------------------------------------------------------------------------

class AtqError(Exception):
    """Base class of every error atq raises (an interrupted call raises ``KeyboardInterrupt``)."""

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
    """The engine refused or failed an operation; the subclasses say more."""

    operation: Optional[str]
    """What atq asked for ("create service", ...); None for the subclasses."""
    resource: Optional[str]
    """The object it concerned; None for the subclasses."""

class EngineUnreachable(EngineError):
    """The engine's API cannot be reached at all."""

    host: str

class EngineAddress(EngineError):
    """The engine's address (DOCKER_HOST) or its TLS files cannot or will not be used."""

    host: str
    reason: str
    fix: str

class EngineUnsuitable(EngineError):
    """The engine answers but cannot run the backend asked for."""

    host: str
    backend: str
    reason: str
    fix: str

class ObjectNotFound(EngineError):
    """An engine object does not exist."""

    kind: str
    name: str

class ObjectExists(EngineError):
    """An engine object of this name already exists."""

    kind: str
    name: str

class ObjectInUse(EngineError):
    """An engine object cannot be removed because others still use it."""

    kind: str
    name: str
    users: list[str]

class DeployTimeout(AtqError):
    """A wait ran out of time; ``phase`` says which."""

    phase: Literal["workers", "probe", "master", "run", "teardown", "discovery"]
    waited: float
    """Seconds waited."""
    missing: str
    """What was still missing."""

class ProbeTimeout(DeployTimeout):
    """The wait command never passed within its timeout (``phase == "probe"``)."""

    attempts: int
    last: str
    """The exit code and output of the last try."""

class ReplicaFailed(AtqError):
    """A replica failed to start or stopped unexpectedly."""

    service: str
    replica: str
    state: str
    reason: str

class DataError(AtqError):
    """A data bundle could not be read, stored or found."""

    id: Optional[str]
    """The bundle, when the error is about one."""
    entry: Optional[str]
    """The archive entry refused, when one is."""

class ResultsError(AtqError):
    """Results files could not be read or merged."""

    path: Optional[str]
    """The file concerned, when there is one."""
    line: Optional[int]
    """The 1-based line of a malformed row, when there is one."""

class ArtifactsError(AtqError):
    """The master's artifacts could not be saved."""

class ArtifactsNotFound(ArtifactsError):
    """The master wrote nothing in the task's ``artifacts`` directory."""

    path: str
    """That directory, in the master's container."""

class UnsafeArtifact(ArtifactsError):
    """An archive entry would write outside the destination or through a link."""

    entry: str
    reason: str

class TeardownIncomplete(AtqError):
    """A teardown removed some of the task's objects but not all; calling it again retries."""

    task: str
    left: list[str]
    """What is still on the engine (``"service t_worker"``, ...)."""
    cause: AtqError
    """The first removal that failed (also ``__cause__``)."""

def wait_for_cleanups(timeout: Optional[_Seconds] = None) -> bool:
    """Waits (default: at most 60 s) for atq's background cleanups; returns whether all finished."""

def pending_cleanups() -> int:
    """How many of atq's background cleanups have not finished."""

# --- what to run -----------------------------------------------------------------------------

@final
class HealthCheck:
    """A container health check run by the engine: a replica counts as running once it passes."""

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
class Shard:
    """A CSV file of the workers' bundle split across them; each reads its slice at the file's path."""

    def __new__(cls,
        file: str,
        *,
        split: Literal["round-robin", "blocks"] = "round-robin",
        header: bool = True,
        delimiter: str = ",",
    ) -> Self: ...
    @property
    def file(self) -> str: ...
    @property
    def split(self) -> str: ...
    @property
    def header(self) -> bool: ...
    @property
    def delimiter(self) -> str: ...

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
        shards: Optional[Sequence[Shard]] = None,
        stop_grace_period: Optional[_Seconds] = None,
    ) -> Self: ...
    @property
    def shards(self) -> list[Shard]: ...
    @property
    def stop_grace_period(self) -> float: ...
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
    """A probe run on the task network before the master starts, retried until it exits 0 and
    (with ``expected_result``) its trimmed output equals that; image: ``image``, else the master's."""

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
    """A real Docker engine, connected when created (raises ``EngineError``).

    Swarm on a swarm manager, plain Docker otherwise; ``engine="swarm"`` / ``"docker"`` (or
    ``ATQ_ENGINE``) picks one; ``backend`` and ``reason`` say which and why."""

    def __new__(
        cls, host: Optional[str] = None, engine: Optional[Literal["swarm", "docker", "auto"]] = None
    ) -> Self: ...
    @property
    def backend(self) -> Literal["swarm", "docker"]: ...
    @property
    def reason(self) -> str: ...
    @property
    def host(self) -> str: ...

# --- running tasks ---------------------------------------------------------------------------

class _TaskInfo(TypedDict):
    # also `exit_code` (state "finished") or `reason` (state "failed")
    name: str
    state: Literal["deploying", "running", "finished", "failed"]
    workers_running: int
    workers_total: int
    workers: list[str]
    owner: Optional[str]
    detached: bool
    expires: Optional[int]
    created: Optional[int]
    prune: dict[str, Any]
    resources: list[dict[str, Any]]

class _PrunedTask(TypedDict):
    name: str
    why: str
    resources: int
    error: Optional[str]

class _PruneReport(TypedDict):
    tasks: list[_PrunedTask]

class _PrunePlan(TypedDict):
    name: str
    remove: bool
    why: str
    reason: dict[str, Any]

class _Deploy(TypedDict):
    task: str
    deploy_id: str

class _Captured(TypedDict):
    master: str
    workers: str
    results: Optional[str]

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
    def failed_to_start(self) -> bool: ...
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
class RunReport:
    """What ``Director.run`` did; ``exit_code`` by atq's one rule (what ``atq run`` exits with)."""

    @property
    def task(self) -> str: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def passed(self) -> bool: ...
    @property
    def failure(self) -> Optional[str]: ...
    @property
    def workers(self) -> list[str]: ...
    @property
    def artifacts_dir(self) -> Optional[str]: ...
    @property
    def artifacts(self) -> list[str]: ...
    @property
    def artifacts_error(self) -> Optional[ArtifactsError]: ...
    @property
    def teardown_error(self) -> Optional[AtqError]: ...
    @property
    def results(self) -> Optional[Results]: ...
    @property
    def result_files(self) -> list[str]: ...
    @property
    def kept(self) -> bool: ...
    @property
    def duration(self) -> float: ...
    def to_dict(self) -> dict[str, Any]: ...
    def assert_passed(self) -> None: ...

@final
class Deployment:
    """A deployed task; a (sync or async) context manager that tears it down on exit."""

    @property
    def name(self) -> str: ...
    @property
    def deploy_id(self) -> str: ...
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
    def __exit__(self, exc_type: object = None, _exc: object = None, _tb: object = None) -> bool: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(self, exc_type: object = None, _exc: object = None, _tb: object = None) -> Awaitable[Optional[bool]]: ...

@final
class Director:
    """Runs tasks on a cluster."""

    def __new__(cls,
        cluster: Union[DockerCluster, FakeCluster],
        *,
        on_event: Optional[_EventCallback] = None,
        concurrency: Optional[int] = None,
        keep_on_failure: bool = False,
        capture: int = 0,
    ) -> Self: ...
    def deploy(
        self,
        task: Task,
        *,
        keep_on_failure: Optional[bool] = None,
        detached: bool = False,
        on_event: Optional[_EventCallback] = None,
    ) -> Deployment: ...
    def deploy_async(
        self,
        task: Task,
        *,
        keep_on_failure: Optional[bool] = None,
        detached: bool = False,
        on_event: Optional[_EventCallback] = None,
    ) -> Awaitable[Deployment]: ...
    def run(
        self,
        task: Task,
        *,
        timeout: Optional[_Seconds] = None,
        artifacts_dir: Union[str, "os.PathLike[str]", None] = None,
        follow_logs: _FollowLogs = "master",
        keep: Optional[_Keep] = None,
        log_tail: Optional[int] = None,
        on_event: Optional[_EventCallback] = None,
        on_log: Optional[_EventCallback] = None,
    ) -> RunReport: ...
    def run_async(
        self,
        task: Task,
        *,
        timeout: Optional[_Seconds] = None,
        artifacts_dir: Union[str, "os.PathLike[str]", None] = None,
        follow_logs: _FollowLogs = "master",
        keep: Optional[_Keep] = None,
        log_tail: Optional[int] = None,
        on_event: Optional[_EventCallback] = None,
        on_log: Optional[_EventCallback] = None,
    ) -> Awaitable[RunReport]: ...
    def list(self) -> builtins.list[_TaskInfo]: ...
    def inspect(self, name: str) -> _TaskInfo: ...
    def logs(
        self,
        name: str,
        role: Literal["master", "worker", "probe"] = "master",
        *,
        tail: Optional[int] = None,
        since: Optional[_Seconds] = None,
    ) -> str: ...
    def teardown(self, name: str) -> None: ...
    def teardown_deploy(self, name: str, deploy_id: str) -> bool: ...
    @property
    def deploys(self) -> builtins.list[_Deploy]: ...
    def teardown_own(self) -> builtins.list[str]: ...
    def captured(self) -> dict[str, _Captured]: ...
    def prune_plan(self) -> builtins.list[_PrunePlan]: ...
    def prune(self) -> _PruneReport: ...
    def prune_all(self) -> _PruneReport: ...
    def push_data(
        self, path: Union[str, "os.PathLike[str]"], *, split: Optional[Mapping[str, Literal["round-robin", "blocks"]]] = None
    ) -> str: ...
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
