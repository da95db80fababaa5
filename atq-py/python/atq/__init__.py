"""atq: disposable distributed load-test clusters (N workers + 1 master) on Docker Swarm.

>>> import atq
>>> task = atq.Task("hello", worker=atq.Service("busybox", replicas=3), master=atq.Service("busybox"))
>>> director = atq.Director(atq.FakeCluster())   # atq.DockerCluster() for a real engine
>>> report = director.run(task)
>>> report.passed, report.exit_code, len(report.workers)
(True, 0, 3)
>>> with director.deploy(task) as d:
...     len(d.workers)
...     d.wait(timeout=60).exit_code
3
0

Everything here comes from the Rust extension ``atq._atq``; see ``atq/__init__.pyi`` for the
types. At exit the interpreter waits (at most 60 s) for atq's background cleanups.
"""

from atq._atq import (
    ArtifactsError,
    ArtifactsNotFound,
    AtqError,
    DataError,
    Deployment,
    DeployTimeout,
    Director,
    DockerCluster,
    EngineAddress,
    EngineError,
    EngineUnreachable,
    EngineUnsuitable,
    FakeCluster,
    HealthCheck,
    ObjectExists,
    ObjectInUse,
    ObjectNotFound,
    Outcome,
    ProbeTimeout,
    ReplicaFailed,
    Resources,
    Results,
    ResultsError,
    RunReport,
    Service,
    Shard,
    Task,
    TaskExists,
    TaskNotFound,
    TeardownIncomplete,
    UnsafeArtifact,
    ValidationError,
    WaitCommand,
    pending_cleanups,
    wait_for_cleanups,
    __version__,
)

__all__ = [
    "ArtifactsError",
    "ArtifactsNotFound",
    "AtqError",
    "DataError",
    "Deployment",
    "DeployTimeout",
    "Director",
    "DockerCluster",
    "EngineAddress",
    "EngineError",
    "EngineUnreachable",
    "EngineUnsuitable",
    "FakeCluster",
    "HealthCheck",
    "ObjectExists",
    "ObjectInUse",
    "ObjectNotFound",
    "Outcome",
    "ProbeTimeout",
    "ReplicaFailed",
    "Resources",
    "Results",
    "ResultsError",
    "RunReport",
    "Service",
    "Shard",
    "Task",
    "TaskExists",
    "TaskNotFound",
    "TeardownIncomplete",
    "UnsafeArtifact",
    "ValidationError",
    "WaitCommand",
    "pending_cleanups",
    "wait_for_cleanups",
    "__version__",
]
