"""atq example locustfile: every worker loads its own loopback HTTP server.

The worker entrypoint starts `busybox httpd` on 127.0.0.1:8080 in the same container
(LOCUST_HOST, the default host), so the load never leaves the worker. Two request
names, "home" (GET /, checked to be the worker's page) and "static" (GET /static.txt,
about 4 KB), three to one.
"""

from locust import HttpUser, constant_throughput, task


class Visitor(HttpUser):
    """A user that makes at most 10 requests a second."""

    wait_time = constant_throughput(10)

    @task(3)
    def home(self):
        """GET /: the worker's page, which names the worker."""
        with self.client.get("/", name="home", catch_response=True) as response:
            if "atq-locust worker" not in response.text:
                response.failure("not the worker's page")

    @task(1)
    def static(self):
        """GET /static.txt: a bigger static file."""
        self.client.get("/static.txt", name="static")
