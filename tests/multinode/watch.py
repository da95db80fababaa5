#!/usr/bin/env python3
"""Prints, with timestamps, every change the up.sh swarm shows while something runs on it.

    tests/multinode/watch.py [--prefix NAME] [--interval 0.2] [--for SECONDS]

Polls the manager (node1) every interval for its nodes (state, availability, message), the tasks
of services whose name starts with the prefix (slot, node, state, desired state, error), those
services and networks, and every node's engine for the containers of those services. One line per
change, so the output is the timeline of a run: what the engine knew and when. An exploration
tool (the facts in tests/multinode/README.md come from it); the tests do not use it.
Standard library only; reads the engines' sockets, changes nothing.
"""

import argparse
import http.client
import json
import socket
import sys
import time
import urllib.parse

RUN = "/run/atq-multinode"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def get(node, path, timeout=1.0):
    """GET path from a node's engine: parsed JSON, or the error as a string."""
    conn = UnixConnection(f"{RUN}/{node}.sock", timeout)
    try:
        conn.request("GET", "/v1.41" + path)
        resp = conn.getresponse()
        body = resp.read(16 * 1024 * 1024)
        if resp.status != 200:
            return f"HTTP {resp.status}"
        return json.loads(body)
    except OSError as e:
        return f"unreachable ({e.__class__.__name__})"
    finally:
        conn.close()


def nodes_view():
    nodes = get("node1", "/nodes")
    if isinstance(nodes, str):
        return {"manager": nodes}, {}
    view, names = {}, {}
    for n in nodes:
        host = n["Description"]["Hostname"]
        names[n["ID"]] = host
        status = n["Status"]
        view[host] = f'{status["State"]}/{n["Spec"]["Availability"]}' + (
            f' "{status["Message"]}"' if status.get("Message") else ""
        )
    return view, names


def tasks_view(prefix, names):
    services = get("node1", "/services")
    if isinstance(services, str):
        return {"services": services}, []
    wanted = {s["ID"]: s["Spec"]["Name"] for s in services if s["Spec"]["Name"].startswith(prefix)}
    view = {f"service {name}": "exists" for name in wanted.values()}
    tasks = get("node1", "/tasks")
    if isinstance(tasks, str):
        view["tasks"] = tasks
        return view, list(wanted)
    for t in tasks:
        service = wanted.get(t["ServiceID"])
        if service is None and t["ServiceID"] not in seen_services:
            continue
        service = service or seen_services[t["ServiceID"]]
        status = t["Status"]
        err = status.get("Err", "")
        view[f'task {service}.{t.get("Slot", "-")} {t["ID"][:6]}'] = (
            f'on {names.get(t.get("NodeID", ""), t.get("NodeID", "-") or "-")} '
            f'{status["State"]} (desired {t["DesiredState"]})' + (f' err="{err}"' if err else "")
        )
    seen_services.update(wanted)
    return view, list(seen_services)


def networks_view(prefix):
    networks = get("node1", "/networks")
    if isinstance(networks, str):
        return {"networks": networks}
    return {f'network {n["Name"]}': "exists" for n in networks if n["Name"].startswith(prefix)}


def containers_view(nodes, service_ids):
    view = {}
    for node in nodes:
        filters = urllib.parse.quote(json.dumps({"label": ["com.docker.swarm.service.id"]}))
        found = get(node, f"/containers/json?all=1&filters={filters}", timeout=0.5)
        if isinstance(found, str):
            view[f"{node} engine"] = found
            continue
        for c in found:
            if c["Labels"].get("com.docker.swarm.service.id") in service_ids:
                view[f'{node} container {c["Names"][0].lstrip("/")[:40]}'] = c["State"]
    return view


seen_services = {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="", help="only services and networks named so (default: all)")
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--for", dest="duration", type=float, default=600.0)
    args = parser.parse_args()
    start = time.monotonic()
    last = {}
    while time.monotonic() - start < args.duration:
        nodes, names = nodes_view()
        tasks, service_ids = tasks_view(args.prefix, names)
        view = {f"node {k}": v for k, v in nodes.items()}
        view.update(tasks)
        view.update(networks_view(args.prefix))
        view.update(containers_view(sorted(set(names.values())) or ["node1"], set(service_ids)))
        stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 10) % 10}"
        for key in sorted(set(view) | set(last)):
            if view.get(key) != last.get(key):
                print(f"{stamp} {key}: {view.get(key, 'gone')}", flush=True)
        last = view
        time.sleep(args.interval)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
