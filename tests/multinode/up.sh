#!/usr/bin/env bash
# Builds a real N-node Docker Swarm on this machine (default 3 nodes), idempotently:
#   tests/multinode/up.sh [N]
# Each node is a network namespace joined over veth to a bridge (in a namespace of its own),
# with its own dockerd (config file, data-root, exec-root, socket, pid file, bip, address pools,
# cgroup-parent, hostname nodeN). node1 is the manager (`swarm init --dispatcher-heartbeat 1s`,
# so a lost node is marked Down in ~3 s), the others join as workers. The images the tests run
# are copied from the machine's engine (no registry): atq-test/busybox:latest (built if missing),
# and atq-example/busybox:latest, atq-example/jmeter:2.13 when that engine has them
# (ATQ_MULTINODE_IMAGES overrides the list). The machine's own engine is only read from.
#
# Prints the manager's address; the tests find it in ATQ_MULTINODE_HOST:
#   export ATQ_MULTINODE_HOST=unix:///run/atq-multinode/node1.sock
# Node N's engine answers on unix:///run/atq-multinode/nodeN.sock. Tear down: down.sh.
# Needs root, iproute2, util-linux (nsenter, unshare, flock), dockerd 20.10+, cgroup v1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

count=${1:-3}
case $count in ''|*[!0-9]*) die "usage: up.sh [N] (N nodes, 1..$MN_MAX_NODES)" ;; esac
if [ "$count" -lt 1 ] || [ "$count" -gt "$MN_MAX_NODES" ]; then die "N must be 1..$MN_MAX_NODES, not $count"; fi
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, cgroups, dockerd)"
for tool in ip nsenter unshare flock findmnt dockerd docker; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
[ -d /sys/fs/cgroup/freezer ] || die "needs cgroup v1 (no /sys/fs/cgroup/freezer)"

mn_lock
started=$EPOCHREALTIME
mkdir -p "$MN_RUN"
ensure_data_dir

existing=$(known_nodes | wc -l)
[ "$existing" -le "$count" ] ||
    die "$existing nodes exist, more than the $count asked for: run tests/multinode/down.sh first"
nodes=$(seq -f 'node%g' 1 "$count")

# 1. Boot every node whose engine does not answer (in parallel: ~1 s each).
ensure_link
pids=()
for node in $nodes; do
    if ! node_up "$node"; then
        log "booting $node ($(node_ip "$node"))"
        boot_node "$node" &
        pids+=($!)
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || die "a node did not boot"; done

# 2. The swarm: node1 the manager, the others workers.
swarm_state() { ndocker "$1" info --format '{{.Swarm.LocalNodeState}}'; }
manager=node1
manager_ip=$(node_ip "$manager")
case $(swarm_state "$manager") in
    active) ;;
    inactive)
        log "swarm init on $manager"
        ndocker "$manager" swarm init --advertise-addr "$manager_ip" --listen-addr "$manager_ip:2377" \
            --default-addr-pool "$MN_SWARM_POOL" --default-addr-pool-mask-length 24 \
            --dispatcher-heartbeat 1s >/dev/null ;;
    *) die "$manager's swarm state is '$(swarm_state "$manager")': run down.sh, then up.sh" ;;
esac
[ "$(ndocker "$manager" info --format '{{.Swarm.ControlAvailable}}')" = true ] || die "$manager is not a manager"
token=$(ndocker "$manager" swarm join-token -q worker)
pids=()
for node in $nodes; do
    [ "$node" = "$manager" ] && continue
    state=$(swarm_state "$node")
    if [ "$state" != active ]; then
        log "$node joins the swarm"
        [ "$state" = inactive ] || ndocker "$node" swarm leave --force >/dev/null 2>&1 || true
        ip=$(node_ip "$node")
        ndocker "$node" swarm join --token "$token" --advertise-addr "$ip" --listen-addr "$ip:2377" \
            "$manager_ip:2377" >/dev/null &
        pids+=($!)
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || die "a node could not join the swarm"; done

# Every node Ready and labelled multinode.node=<hostname>.
for _ in $(seq 100); do
    ready=$(ndocker "$manager" node ls --format '{{.Hostname}} {{.Status}}' | awk '$2 == "Ready"' | wc -l)
    [ "$ready" -ge "$count" ] && break
    sleep 0.1
done
[ "$ready" -ge "$count" ] || { ndocker "$manager" node ls >&2; die "only $ready of $count nodes are Ready"; }
for id in $(ndocker "$manager" node ls -q); do
    read -r hostname label < <(ndocker "$manager" node inspect "$id" \
        --format '{{.Description.Hostname}} {{index .Spec.Labels "multinode.node"}}')
    [ "$label" = "$hostname" ] || ndocker "$manager" node update --label-add "multinode.node=$hostname" "$id" >/dev/null
done

log "swarm of $count nodes ready after $(elapsed_since "$started") s"

# 3. Images: saved from the machine's engine once (cached by image id), loaded where missing.
src() { docker -H "$MN_SOURCE_HOST" "$@"; }
if [ -z "${ATQ_MULTINODE_IMAGES:-}" ]; then
    DOCKER_HOST=$MN_SOURCE_HOST "$here/../images/build.sh" >/dev/null
    images="atq-test/busybox:latest"
    for optional in atq-example/busybox:latest atq-example/jmeter:2.13; do
        src image inspect "$optional" >/dev/null 2>&1 && images="$images $optional"
    done
else
    images=$ATQ_MULTINODE_IMAGES
fi
mkdir -p "$MN_DATA/images"
pids=()
for image in $images; do
    id=$(src image inspect -f '{{.Id}}' "$image" 2>/dev/null) || die "the machine's engine has no image $image"
    # One archive per tag (a tag saved under another tag's archive would load untagged).
    tar="$MN_DATA/images/$(printf '%s' "$image" | tr -c 'a-zA-Z0-9._-' '_')-${id#sha256:}.tar"
    for node in $nodes; do
        [ "$(ndocker "$node" image inspect -f '{{.Id}}' "$image" 2>/dev/null)" = "$id" ] && continue
        if [ ! -s "$tar" ]; then
            log "saving $image from the machine's engine"
            src save -o "$tar.part" "$image" && mv "$tar.part" "$tar"
        fi
        log "loading $image into $node"
        ndocker "$node" load -q -i "$tar" >/dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || die "loading $image failed"; done
    pids=()
done

ndocker "$manager" node ls >&2
log "up: $count nodes in $(elapsed_since "$started") s; images: $images"
echo "export ATQ_MULTINODE_HOST=$(node_host "$manager")"
