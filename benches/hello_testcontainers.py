"""The hello example done the way a Python test suite does it with testcontainers-python.

    TESTCONTAINERS_RYUK_DISABLED=true python benches/hello_testcontainers.py [N]

The same work as `atq run examples/hello/hello.yaml` with N workers (default 3): a bridge
network; N busybox httpd workers, started one after the other (testcontainers starts a container,
then waits for it); a port wait on each (testcontainers' PortWaitStrategy: a TCP connect to the
published port); the master container, given the workers' addresses in WORKER_CSV_VIPS; its exit
code and logs; then every container and the network removed. Exits with the master's exit code.

Needs `pip install testcontainers` and the image atq-example/busybox:latest
(examples/hello/build-images.sh). Ryuk (testcontainers' reaper) is disabled: its image cannot be
pulled here, and the script removes everything itself.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.network import Network  # noqa: E402
from testcontainers.core.wait_strategies import PortWaitStrategy  # noqa: E402

IMAGE = os.environ.get("HELLO_IMAGE", "atq-example/busybox:latest")

# The worker and master of examples/hello/hello.yaml, verbatim.
WORKER = """
addr=$(hostname -i | awk '{print $1}')
mkdir -p /tmp/www
echo "hello from worker $(hostname) at $addr (task ${ATQ_TASK:-?})" > /tmp/www/index.html
echo "worker $(hostname) serving on $addr:8080"
httpd -f -p 8080 -h /tmp/www &
trap 'kill $! 2>/dev/null; exit 0' TERM INT
wait
"""

MASTER = """
want=${EXPECTED_WORKERS:-3}
echo "hello: master $(hostname) got WORKER_CSV_VIPS=${WORKER_CSV_VIPS:-}"
ips=$(echo "${WORKER_CSV_VIPS:-}" | tr ',' '\\n' | grep . | sort -u)
distinct=$(echo "$ips" | grep -c .)
if [ "$distinct" != "$want" ]; then
  echo "hello: expected $want distinct worker addresses, got $distinct"
fi
ok=0
for ip in $ips; do
  page=$(timeout 5 wget -q -O- "http://$ip:8080/" 2>/dev/null)
  case $page in
    *" at $ip "*) echo "hello: $ip -> $page"; ok=$((ok + 1)) ;;
    "") echo "hello: $ip -> UNREACHABLE" ;;
    *) echo "hello: $ip -> unexpected page: $page" ;;
  esac
done
echo "hello: reached $ok/$want workers"
[ "$distinct" = "$want" ] && [ "$ok" = "$want" ]
"""


def address(container: DockerContainer, network: Network) -> str:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    return wrapped.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    workers: list[DockerContainer] = []
    master = None
    with Network() as network:
        try:
            for _ in range(n):
                worker = (
                    DockerContainer(IMAGE)
                    .with_command(["/bin/sh", "-c", WORKER])
                    .with_network(network)
                    .with_network_aliases("hello_worker")
                    .with_exposed_ports(8080)
                    .waiting_for(PortWaitStrategy(8080))
                )
                worker.start()
                workers.append(worker)
            addresses = ",".join(address(w, network) for w in workers)
            master = (
                DockerContainer(IMAGE)
                .with_command(["/bin/sh", "-c", MASTER])
                .with_network(network)
                .with_env("WORKER_CSV_VIPS", addresses)
                .with_env("REMOTES", addresses)
                .with_env("EXPECTED_WORKERS", str(n))
            )
            master.start()
            code = master.wait()
            stdout, stderr = master.get_logs()
            sys.stdout.write(stdout.decode(errors="replace"))
            sys.stderr.write(stderr.decode(errors="replace"))
            return code
        finally:
            for container in [master, *workers]:
                if container is not None:
                    container.stop()


if __name__ == "__main__":
    sys.exit(main())
