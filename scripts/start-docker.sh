#!/usr/bin/env bash
# Start a Docker engine if none answers. Installs Debian's docker.io when dockerd is
# missing. A dockerd killed earlier leaves /var/run/docker.pid behind, and a new
# one refuses to start until that stale file is removed.
set -euo pipefail

engine_up() { /usr/bin/docker version >/dev/null 2>&1 || docker version >/dev/null 2>&1; }

if engine_up; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-docker: installing Debian's docker.io" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    echo "start-docker: removing stale /var/run/docker.pid" >&2
    rm -f /var/run/docker.pid
fi
for stale in /var/run/docker/containerd/containerd.pid; do
    if [ -f "$stale" ] && ! kill -0 "$(cat "$stale")" 2>/dev/null; then rm -f "$stale"; fi
done
log=${DOCKERD_LOG:-/var/log/imagebuild-dockerd.log}
setsid nohup dockerd >"$log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
    if engine_up; then
        echo "start-docker: engine up" >&2
        exit 0
    fi
    sleep 1
done
echo "start-docker: dockerd did not come up within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
