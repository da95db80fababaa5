#!/usr/bin/env bash
# Makes the local Docker engine ready for atq, idempotently:
#   1. an engine answers (starts dockerd if none does; installs Debian's docker.io if missing),
#   2. it is a swarm manager (`docker swarm init --advertise-addr 127.0.0.1` if not) — skipped
#      with --no-swarm: atq runs on a plain engine too (its plain Docker backend), and the tests
#      need the swarm only for the swarm backend's half,
#   3. the images the tests and the examples run exist (built locally: no registry here).
set -euo pipefail
cd "$(dirname "$0")/.."

swarm=1
[ "${1:-}" = "--no-swarm" ] && swarm=0

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if ! command -v docker >/dev/null 2>&1; then
  echo "prepare-engine: installing docker.io"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io
fi

if ! engine_up; then
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then :; else
    echo "prepare-engine: starting dockerd"
    nohup dockerd >/var/log/atq-dockerd.log 2>&1 &
  fi
  for _ in $(seq 60); do engine_up && break; sleep 1; done
  engine_up || { echo "prepare-engine: the Docker engine did not start (see /var/log/atq-dockerd.log)" >&2; exit 1; }
fi

state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
[ "$swarm" = 1 ] || state="skip"
case $state in
  skip) ;;
  "active true") ;;
  "inactive "*)
    echo "prepare-engine: docker swarm init --advertise-addr 127.0.0.1"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null ;;
  *)
    echo "prepare-engine: the engine's swarm state is '$state', not a manager: re-initialising"
    docker swarm leave --force >/dev/null 2>&1 || true
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null ;;
esac

tests/images/build.sh
examples/hello/build-images.sh
scripts/build-example-images.sh
role=$(docker info --format '{{if .Swarm.ControlAvailable}}swarm manager{{else}}not a swarm manager (atq uses its plain Docker backend){{end}}')
echo "prepare-engine: engine $(docker version --format '{{.Server.Version}}'), $role, images ready"
