#!/bin/bash
# bake-physx.sh zip|download ZIP DIR — run by the sim layer's build. Puts SAPIEN's
# PhysX GPU library at DIR/<sapien.physx.version()>/libPhysXGpu_64.so and links that
# folder from root's and dev's ~/.sapien/physx/, where sapien.physx.enable_gpu()
# looks. The source used is printed and recorded for the image's versions label.
# A failed download is not fatal: the entrypoint then keeps ~/.sapien on the volume.
set -euo pipefail
mode=$1 zip=$2 dir=$3
py=/opt/venv/bin/python
# shellcheck source=/dev/null
. /usr/local/lib/imagebuild/build-env.sh  # the CA bundle for curl, record_version
say() { echo "physx-gpu: $*"; }

# SAPIEN names the release it needs; importing it needs no GPU.
version=$("$py" -c 'import sapien.physx as p; print("PHYSX_VERSION=" + p.version())' 2>/tmp/sapien.err \
    | sed -n 's/^PHYSX_VERSION=//p') || true
if [ -z "$version" ]; then
    say "cannot ask SAPIEN for its PhysX version (import sapien.physx failed):" >&2
    tail -5 /tmp/sapien.err >&2
    exit 1
fi
target=$dir/$version

# extract ZIP: the library alone, whatever else the zip holds (no path of it is trusted).
extract() {
    mkdir -p "$target"
    "$py" - "$1" "$target/libPhysXGpu_64.so" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive, archive.open("libPhysXGpu_64.so") as src:
    with open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
}

# not_baked REASON: the one line saying so; the entrypoint takes over (the volume).
not_baked() {
    rm -rf "$target"
    say "not baked: the download of $url failed (${1##*$'\n'}); pods keep ~/.sapien on the volume (/workspace/.cache/sapien), where enable_gpu() downloads it once per volume"
    record_version sim physx-gpu "none (download failed; volume fallback)"
    record_version sim physx-version "$version"
    exit 0
}

if [ "$mode" = zip ]; then
    extract "$zip"
    source="zip sha256:$(sha256sum "$zip" | cut -c1-16)"
else
    url=https://github.com/sapien-sim/physx-precompiled/releases/download/$version/linux-so.zip
    reason=$(curl -fsSL --connect-timeout 20 --max-time 900 --retry 2 -o /tmp/linux-so.zip "$url" 2>&1) \
        || not_baked "${reason:-curl failed}"
    reason=$(extract /tmp/linux-so.zip 2>&1) \
        || not_baked "no usable libPhysXGpu_64.so in it: ${reason##*$'\n'}"
    source="download $url"
fi
chmod 0755 "$dir" "$target" "$target/libPhysXGpu_64.so"
for home in /root /home/dev; do
    [ -d "$home" ] || continue
    mkdir -p "$home/.sapien/physx"
    ln -sfn "$target" "$home/.sapien/physx/$version"
    chown -hR "$(stat -c %u:%g "$home")" "$home/.sapien"
done
say "baked $target/libPhysXGpu_64.so from $source, linked from /root and /home/dev ~/.sapien/physx/$version"
record_version sim physx-gpu "$source"
record_version sim physx-version "$version"
