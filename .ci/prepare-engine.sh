#!/bin/sh
# Prepares the Docker engine the integration tests need, idempotently:
#   1. a reachable dockerd (installs Debian's docker.io if missing, starts it if not running);
#   2. a swarm with this engine as manager (`docker swarm init --advertise-addr 127.0.0.1`);
#   3. the test images (tests/images/build.sh; nothing can be pulled here).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
    echo "prepare-engine: installing docker.io" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q docker.io >&2 || { apt-get update -q >&2 && apt-get install -y -q docker.io >&2; }
fi

if ! docker info >/dev/null 2>&1; then
    if [ -n "${DOCKER_HOST:-}" ]; then
        echo "prepare-engine: DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd" >&2
        exit 1
    fi
    echo "prepare-engine: starting dockerd" >&2
    if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then
        :
    elif command -v service >/dev/null 2>&1 && service docker start >/dev/null 2>&1; then
        :
    else
        nohup dockerd >/var/log/dockerd.log 2>&1 &
    fi
    i=0
    until docker info >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -le 60 ] || { echo "prepare-engine: dockerd did not come up (see /var/log/dockerd.log)" >&2; exit 1; }
        sleep 0.5
    done
fi

state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
case "$state" in
    "active true") ;;
    "inactive "*)
        echo "prepare-engine: docker swarm init" >&2
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null
        ;;
    *)
        echo "prepare-engine: engine is in swarm state '$state', not a manager: fix by hand (docker swarm leave --force; docker swarm init --advertise-addr 127.0.0.1)" >&2
        exit 1
        ;;
esac

"$here/tests/images/build.sh"
echo "prepare-engine: ready ($(docker version --format '{{.Server.Version}}, API {{.Server.APIVersion}}'), swarm manager)"
