#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for imagebuild: system tools, a Docker
# engine, and the project's virtualenv (.venv) with the test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in dockerd:docker.io debootstrap:debootstrap docker-registry:docker-registry \
            docker-compose:docker-compose htpasswd:apache2-utils ssh:openssh-client \
            git:git iptables:iptables gcc:gcc rclone:rclone sshd:openssh-server git-lfs:git-lfs \
            git-crypt:git-crypt git-annex:git-annex skopeo:skopeo; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# The fake RunPod's SSH gateway (tests/fake_runpod/gateway.py) gives sshd its pod logins.
[ -e /usr/lib/x86_64-linux-gnu/libnss_wrapper.so ] || dpkg -s libnss-wrapper >/dev/null 2>&1 \
    || need+=(libnss-wrapper)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing ${need[*]}; install them (sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

bash scripts/start-docker.sh

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "setup: ready (.venv/bin/imagebuild)" >&2
