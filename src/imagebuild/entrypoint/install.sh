#!/bin/sh
# Runs once at build time (runtime layer): puts the pod commands on PATH.
set -eu
here=/usr/local/lib/imagebuild/entrypoint
for tool in "$here"/bin/*; do
    install -m 0755 "$tool" "/usr/local/bin/$(basename "$tool")"
done
