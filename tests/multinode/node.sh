#!/usr/bin/env bash
# One node of the up.sh swarm:
#   node.sh kill NODE    power cut: all its processes SIGKILLed at once, its link pulled
#                        (the manager marks it Down ~3 s later); leaves what a crash leaves
#   node.sh start NODE   boot it again (what a reboot clears is cleared: stale pid files,
#                        mounts, containerd's shim sockets) and wait until its engine answers;
#                        it rejoins the swarm by itself
#   node.sh host NODE    print its engine's address (DOCKER_HOST)
#   node.sh status       every node: engine up or down, its processes' resident memory
#                        (shared pages counted in each), and the manager's view
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() { die "usage: node.sh kill|start|host NODE, or node.sh status"; }
command=${1:-}
node=${2:-}
case $command in
    kill|start|host) [ -n "$node" ] || usage; node_index "$node" >/dev/null
        [ -f "$(node_dir "$node")/daemon.json" ] || die "no node $node: up.sh builds them" ;;
    status) ;;
    *) usage ;;
esac
case $command in
    host) node_host "$node"; exit 0 ;;
    status)
        for n in $(known_nodes); do
            rss=0
            for p in $(node_pids "$n"); do rss=$((rss + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
            if node_up "$n"; then state=up; else state=down; fi
            echo "$n $state $(node_host "$n") rss $((rss / 1024)) MiB ($(node_pids "$n" | wc -l) processes)"
        done
        node_up node1 && ndocker node1 node ls
        exit 0 ;;
esac
[ "$(id -u)" = 0 ] || die "needs root"
mn_lock
started=$EPOCHREALTIME
case $command in
    kill) kill_node "$node"; log "$node killed in $(elapsed_since "$started") s" ;;
    start)
        node_up "$node" && { log "$node is up already"; exit 0; }
        ensure_link; boot_node "$node"; log "$node started in $(elapsed_since "$started") s" ;;
esac
