"""The failing variant of locustfile.py (locust-fails.yaml).

"home" passes; "missing" asks for a path the worker's server does not have (404, a
failed request), so about half the requests fail and the task's `error_rate`
threshold fails: `atq run` exits 99 although Locust exits 0.
"""

from locust import HttpUser, constant_throughput, task


class Visitor(HttpUser):
    """A user that makes at most 10 requests a second."""

    wait_time = constant_throughput(10)

    @task
    def home(self):
        """GET /: passes."""
        self.client.get("/", name="home")

    @task
    def missing(self):
        """GET /missing: 404."""
        self.client.get("/missing", name="missing")
