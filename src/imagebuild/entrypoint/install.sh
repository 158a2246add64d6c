#!/bin/sh
# Runs once at build time (runtime layer): puts the pod commands on PATH and
# hooks the pod environment into every kind of shell and sshd.
set -eu
here=/usr/local/lib/imagebuild/entrypoint
for tool in "$here"/bin/*; do
    install -m 0755 "$tool" "/usr/local/bin/$(basename "$tool")"
done

# Login shells read profile.d; every other bash shell (SSH commands included) /etc/bash.bashrc.
install -m 0644 "$here/conf/profile.sh" /etc/profile.d/20-imagebuild-pod.sh
touch /etc/bash.bashrc
if ! grep -q '^# imagebuild: the pod environment' /etc/bash.bashrc; then
    cat "$here/conf/bash.bashrc.head" /etc/bash.bashrc "$here/conf/bash.bashrc.tail" >/etc/bash.bashrc.new
    mv /etc/bash.bashrc.new /etc/bash.bashrc
    chmod 0644 /etc/bash.bashrc
fi

# Git settings the entrypoint writes at start (identity, credentials, safe.directory).
mkdir -p /etc/imagebuild
touch /etc/imagebuild/gitconfig
if ! git config --system --get-all include.path 2>/dev/null | grep -qx /etc/imagebuild/gitconfig; then
    git config --system --add include.path /etc/imagebuild/gitconfig
fi

mkdir -p /etc/ssh/sshd_config.d
install -m 0644 "$here/conf/sshd.conf" /etc/ssh/sshd_config.d/10-imagebuild.conf
# dev logs in with keys only: "*" (no password) rather than "!" (locked).
if id dev >/dev/null 2>&1; then usermod -p '*' dev; fi
