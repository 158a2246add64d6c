#!/usr/bin/env bash
# Build the local test base image (no registry can be reached from CI): Debian
# bookworm from debootstrap, cleaned like the official images, `docker import`ed.
set -euo pipefail

image=${IMAGEBUILD_TEST_BASE:-imagebuild-test/debian:bookworm}
# The Debian mirror this machine's apt already uses (no mirror host is written
# in the repository): the first Debian archive URI in its sources, one-line and
# deb822 formats alike; DEBIAN_MIRROR overrides it.
apt_mirror() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        sed -nE 's/^[[:space:]]*(deb[[:space:]]+(\[[^]]*\][[:space:]]+)?|URIs:[[:space:]]*)([a-z]+:\/\/[^[:space:]]+).*/\3/p' |
        grep -v -- '-security' | grep -m1 '/debian/*$' || true
}
mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
if [ -z "$mirror" ]; then
    echo "make-test-base: no Debian mirror in /etc/apt/sources*; set DEBIAN_MIRROR=URL and retry" >&2
    exit 1
fi
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=docker

if "$docker_cli" image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
root=$(mktemp -d /tmp/imagebuild-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "make-test-base: debootstrap bookworm ($mirror)" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# As in Debian's official images: no apt lists or package caches in the base.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
tar -C "$root" -c . | "$docker_cli" import \
    --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$image" >/dev/null
echo "make-test-base: $image ready" >&2
