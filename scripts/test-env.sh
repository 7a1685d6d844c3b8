#!/usr/bin/env bash
# Installs the Debian packages the test suite drives and starts the services it needs.
# Safe to run again: it installs only what is missing and starts only what is not running.
set -euo pipefail

packages=(
  docker.io containerd runc crun skopeo umoci podman buildah uidmap fuse-overlayfs
  busybox-static docker-registry iproute2 iptables ca-certificates apache2-utils procps
  postgresql nginx-light chromium chromium-driver
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-env: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian package starts its own registry on :5000 where an init system runs; keep it off.
if pgrep -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' >/dev/null; then
  pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' || true
fi

if ! docker info >/dev/null 2>&1; then
  echo "test-env: starting dockerd"
  mkdir -p /var/log
  # its own session: a dockerd started from a job must outlive the job's process group
  setsid -f dockerd --iptables=false --bridge=none >/var/log/berth-test-dockerd.log 2>&1 </dev/null
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "test-env: dockerd did not start"; tail -20 /var/log/berth-test-dockerd.log; exit 1; }
fi
echo "test-env: ready (dockerd $(docker version -f '{{.Server.Version}}'))"
