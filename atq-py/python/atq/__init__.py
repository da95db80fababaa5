"""atq: disposable distributed load-test clusters (N workers + 1 master) on Docker Swarm.

>>> import atq
>>> task = atq.Task("hello", worker=atq.Service("busybox", replicas=3), master=atq.Service("busybox"))
>>> director = atq.Director(atq.FakeCluster())   # atq.DockerCluster() for a real engine
>>> with director.deploy(task) as d:
...     len(d.workers)
...     d.wait(timeout=60).exit_code
3
0

Everything here comes from the Rust extension ``atq._atq``; see ``atq/__init__.pyi`` for the
types.
"""

from atq._atq import (
    AtqError,
    DataError,
    DeployTimeout,
    Deployment,
    Director,
    DockerCluster,
    EngineError,
    FakeCluster,
    HealthCheck,
    Outcome,
    ReplicaFailed,
    Resources,
    Results,
    ResultsError,
    Service,
    Task,
    TaskExists,
    TaskNotFound,
    ValidationError,
    WaitCommand,
    __version__,
)

__all__ = [
    "AtqError",
    "DataError",
    "DeployTimeout",
    "Deployment",
    "Director",
    "DockerCluster",
    "EngineError",
    "FakeCluster",
    "HealthCheck",
    "Outcome",
    "ReplicaFailed",
    "Resources",
    "Results",
    "ResultsError",
    "Service",
    "Task",
    "TaskExists",
    "TaskNotFound",
    "ValidationError",
    "WaitCommand",
    "__version__",
]
