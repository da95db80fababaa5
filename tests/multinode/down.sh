#!/usr/bin/env bash
# Tears down what up.sh built, whatever state it is in (also after a crash, or half built):
# every node's processes (SIGKILL: they hold nothing worth a graceful stop), mounts, shim
# sockets, network namespaces, cgroups, data and image cache; then the bridge's namespace.
# The machine's own engine is not touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"

mn_lock
started=$EPOCHREALTIME
nodes=$(known_nodes)
for node in $nodes; do wipe_node "$node" & done
wait
unmount_under "$MN_DATA"
unmount_under "$MN_RUN"
[ -e "/run/netns/$MN_LINK_NS" ] && ip netns del "$MN_LINK_NS"
for c in $MN_CONTROLLERS; do
    d=/sys/fs/cgroup/$c/$MN_CGROUP
    if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
done
rm -rf "$MN_DATA" "$MN_RUN"
log "down: $(echo "$nodes" | grep -c . || true) nodes removed in $(elapsed_since "$started") s"
