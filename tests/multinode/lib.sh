# shellcheck shell=bash
# Shared by up.sh, down.sh and node.sh (sourced, not run): where a node's pieces live, and
# how to boot, kill and wipe one. A "node" is a network namespace with a veth to a bridge,
# a dockerd of its own inside it, and cgroups that hold every process it starts.
#
# Address plan (none of it overlaps the host engine's pools — 172.17-31/16 and 192.168/16
# local, 10/8 swarm — nor one node's pools another's, so an address names its node):
#   198.18.0.0/24        the link between the nodes; nodeN is 198.18.0.(10+N)
#   198.19.N.0/24        nodeN's docker0 (bip)
#   100.(64+N).0.0/16    nodeN's local address pool (docker_gwbridge, bridge networks), /20 each
#   100.96.0.0/11        the swarm's overlay networks (/24 each unless atq asks otherwise)
# The 198.18.0.0/15 range is reserved for network benchmarks (RFC 2544) and 100.64.0.0/10 is
# shared address space (RFC 6598): neither is routed from this machine's own namespace, and
# both are only ever configured inside the namespaces these scripts create.

# shellcheck disable=SC2034 # the settings are read by the scripts that source this file
MN_RUN=/run/atq-multinode            # sockets, exec-roots (a real node's tmpfs /run)
MN_DATA=/var/lib/atq-multinode       # data-roots, configs, logs, the image cache (a tmpfs: see MN_TMPFS)
MN_LOCK=/run/atq-multinode.lock      # one up/down/node.sh at a time
MN_LINK_NS=atq-mn-link               # the namespace that holds the bridge
MN_BRIDGE=br0
MN_CGROUP=atq-multinode              # /sys/fs/cgroup/<controller>/atq-multinode/<node>
MN_CONTROLLERS="pids memory freezer" # the daemon's cgroups; runc adds the rest for containers
MN_SWARM_POOL=100.96.0.0/11
MN_MAX_NODES=16
MN_STORAGE_DRIVER=${ATQ_MULTINODE_STORAGE_DRIVER:-overlay2}
# MN_DATA is a tmpfs of this size (a disposable swarm: removing ~1.4 GB of image layers from
# disk took 15 s here); ATQ_MULTINODE_TMPFS=0 keeps it on disk.
MN_TMPFS=${ATQ_MULTINODE_TMPFS:-1}
MN_TMPFS_SIZE=${ATQ_MULTINODE_TMPFS_SIZE:-8g}
# The engine the images come from: the caller's (never one of ours).
MN_SOURCE_HOST=${ATQ_MULTINODE_SOURCE_HOST:-${DOCKER_HOST:-unix:///var/run/docker.sock}}
case $MN_SOURCE_HOST in *"$MN_RUN"*) MN_SOURCE_HOST=unix:///var/run/docker.sock ;; esac

# Seconds since an $EPOCHREALTIME, with one decimal.
elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

log() { printf 'multinode: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Makes MN_DATA (a tmpfs unless ATQ_MULTINODE_TMPFS=0).
ensure_data_dir() {
    mkdir -p "$MN_DATA"
    if [ "$MN_TMPFS" = 1 ] && ! findmnt -rn "$MN_DATA" >/dev/null; then
        mount -t tmpfs -o "size=$MN_TMPFS_SIZE,mode=0755" atq-multinode "$MN_DATA"
    fi
}

# Takes the lock (waits up to 120 s for another up/down/node.sh to finish).
mn_lock() {
    exec 9>"$MN_LOCK"
    flock -w 120 9 || die "another tests/multinode script holds $MN_LOCK"
}

node_index() { local n=${1#node}; case $n in ''|*[!0-9]*) die "no such node '$1' (nodes are node1, node2, …)" ;; esac; echo "$n"; }
node_ns() { echo "atq-mn-$1"; }
node_ip() { echo "198.18.0.$((10 + $(node_index "$1")))"; }
node_sock() { echo "$MN_RUN/$1.sock"; }
node_host() { echo "unix://$(node_sock "$1")"; }
node_exec_root() { echo "$MN_RUN/$1"; }
node_dir() { echo "$MN_DATA/$1"; }
node_data_root() { echo "$MN_DATA/$1/docker"; }
node_containerd_sock() { echo "$(node_exec_root "$1")/containerd/containerd.sock"; }

# The docker CLI against one node.
ndocker() { local node=$1; shift; docker -H "$(node_host "$node")" "$@"; }

node_up() { timeout 5 docker -H "$(node_host "$1")" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# Every node these scripts know of (a data dir or a namespace), in order.
known_nodes() {
    { ls "$MN_DATA" 2>/dev/null; ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^atq-mn-\(node[0-9]*\)$/\1/p'; } |
        { grep -E '^node[0-9]+$' || true; } | sort -u -V
}

# The link: a bridge in a namespace of its own (in the machine's own namespace the
# firewall's FORWARD policy would drop the bridged frames).
# Call it before booting nodes in parallel (boot_node does not).
ensure_link() {
    [ -e "/run/netns/$MN_LINK_NS" ] || ip netns add "$MN_LINK_NS"
    ip -n "$MN_LINK_NS" link set lo up
    ip -n "$MN_LINK_NS" link show "$MN_BRIDGE" >/dev/null 2>&1 ||
        ip -n "$MN_LINK_NS" link add "$MN_BRIDGE" type bridge
    ip -n "$MN_LINK_NS" link set "$MN_BRIDGE" up
}

# The node's namespace, its veth (eth0 inside, <node> on the bridge) and its address.
ensure_node_net() {
    local node=$1 ns
    ns=$(node_ns "$1")
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    ip -n "$ns" link set lo up
    if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
        ip -n "$MN_LINK_NS" link del "$node" 2>/dev/null || true
        ip link add eth0 netns "$ns" type veth peer name "$node" netns "$MN_LINK_NS"
    fi
    ip -n "$MN_LINK_NS" link set "$node" master "$MN_BRIDGE" up
    ip -n "$ns" addr replace "$(node_ip "$node")/24" dev eth0
    ip -n "$ns" link set eth0 up
}

# The node's cgroups (the daemon and, through cgroup-parent, its containers live in them).
ensure_node_cgroups() {
    for c in $MN_CONTROLLERS; do mkdir -p "/sys/fs/cgroup/$c/$MN_CGROUP/$1"; done
}

# Process ids in the node's cgroup tree (the daemon, containerd, shims, containers).
node_pids() {
    local d=/sys/fs/cgroup/pids/$MN_CGROUP/$1
    [ -d "$d" ] || return 0
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# Kills every process of the node at once, as a power cut would: freezes the tree, sends
# SIGKILL to all, thaws it, and waits until none is left.
kill_node_processes() {
    local node=$1 freezer=/sys/fs/cgroup/freezer/$MN_CGROUP/$1 pids
    [ -n "$(node_pids "$node")" ] || return 0
    if [ -d "$freezer" ]; then echo FROZEN >"$freezer/freezer.state" 2>/dev/null || true; fi
    for _ in $(seq 50); do
        pids=$(node_pids "$node")
        [ -n "$pids" ] || break
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
        if [ -d "$freezer" ]; then echo THAWED >"$freezer/freezer.state" 2>/dev/null || true; fi
        sleep 0.1
    done
    [ -z "$(node_pids "$node")" ] || die "processes of $node survive SIGKILL: $(node_pids "$node" | tr '\n' ' ')"
}

# Unmounts everything under a directory (deepest first; lazily when busy).
unmount_under() {
    local m
    [ -d "$1" ] || return 0
    findmnt -rn -o TARGET | { grep -E "^$1(/|$)" || true; } | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
    done
}

# containerd names each shim's socket /run/containerd/s/<sha256 of "<address>/<namespace>/<id>">
# and leaves it behind when killed; a new shim for the same container then fails. Removes the
# node's ones (computed from its container ids: never another engine's).
remove_stale_shim_sockets() {
    local node=$1 address containers dir id namespace sum
    address=$(node_containerd_sock "$1")
    containers=$(node_data_root "$1")/containers
    [ -d "$containers" ] || return 0
    for dir in "$containers"/*/; do
        [ -d "$dir" ] || continue
        id=$(basename "$dir")
        for namespace in moby plugins.moby; do
            sum=$(printf '%s' "$address/$namespace/$id" | sha256sum | cut -d' ' -f1)
            rm -f "/run/containerd/s/$sum"
        done
    done
}

# What a machine's reboot clears: processes, mounts, /run (pid files, sockets, containerd's
# state), the shim sockets. The data-root (the disk) stays.
reset_node_runtime() {
    local node=$1
    kill_node_processes "$node"
    unmount_under "$(node_exec_root "$node")"
    unmount_under "$(node_data_root "$node")"
    remove_stale_shim_sockets "$node"
    rm -rf "$(node_exec_root "$node")" "$(node_sock "$node")"
}

# The node's daemon config: everything that would otherwise collide with the host engine or
# another node (without --config-file dockerd reads the host's /etc/docker/daemon.json).
write_node_config() {
    local node=$1 n dir
    n=$(node_index "$1")
    dir=$(node_dir "$1")
    mkdir -p "$dir" "$(node_data_root "$node")"
    cat >"$dir/daemon.json" <<EOF
{
  "hosts": ["$(node_host "$node")"],
  "data-root": "$(node_data_root "$node")",
  "exec-root": "$(node_exec_root "$node")",
  "pidfile": "$(node_exec_root "$node")/dockerd.pid",
  "deprecated-key-path": "$dir/key.json",
  "bip": "198.19.$n.1/24",
  "default-address-pools": [{"base": "100.$((64 + n)).0.0/16", "size": 20}],
  "cgroup-parent": "/$MN_CGROUP/$node",
  "storage-driver": "$MN_STORAGE_DRIVER",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "2"},
  "labels": ["multinode.node=$node"]
}
EOF
}

# Boots the node (the link must exist: ensure_link): a clean runtime, its network and cgroups, and its dockerd (hostname <node>,
# in its namespace, in its cgroups; workers never try to pull: there is no registry). Waits
# until the daemon answers.
boot_node() {
    local node=$1 dir cgroups c daemon
    dir=$(node_dir "$1")
    reset_node_runtime "$node"
    ensure_node_net "$node"
    ensure_node_cgroups "$node"
    write_node_config "$node"
    mkdir -p "$(node_exec_root "$node")"
    cgroups=""
    for c in $MN_CONTROLLERS; do cgroups="$cgroups /sys/fs/cgroup/$c/$MN_CGROUP/$node/cgroup.procs"; done
    # shellcheck disable=SC2016
    setsid sh -c 'for f in $1; do echo $$ >"$f"; done
        exec nsenter --net="/run/netns/$2" -- unshare --uts -- sh -c "hostname $3 && exec env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 dockerd --config-file $4"' \
        boot "$cgroups" "$(node_ns "$node")" "$node" "$dir/daemon.json" \
        </dev/null >>"$dir/dockerd.log" 2>&1 9>&- &
    # setsid, nsenter, unshare and sh all exec: $! ends up being dockerd.
    daemon=$!
    for _ in $(seq 600); do
        node_up "$node" && return 0
        kill -0 "$daemon" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$dir/dockerd.log" >&2
    die "the dockerd of $node did not start (log: $dir/dockerd.log)"
}

# Power cut: every process of the node SIGKILLed at once, then its cable pulled (the
# namespace goes, so its address stops answering instead of refusing). Leaves the mounts,
# pid files and shim sockets a crash leaves; boot_node clears them.
kill_node() {
    kill_node_processes "$1"
    ip -n "$MN_LINK_NS" link del "$1" 2>/dev/null || true
    ip netns del "$(node_ns "$1")" 2>/dev/null || true
}

# Everything of the node gone: processes, mounts, namespace, cgroups, data.
wipe_node() {
    local node=$1 c d
    kill_node "$node"
    reset_node_runtime "$node"
    unmount_under "$(node_dir "$node")"
    for c in $MN_CONTROLLERS; do
        d=/sys/fs/cgroup/$c/$MN_CGROUP/$node
        if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
    done
    rm -rf "$(node_dir "$node")"
}
