#!/usr/bin/env bash
# gpu-check.sh — check a GPU machine WITHOUT Docker against the pod image's own
# NVIDIA vendor files and its baked PhysX GPU library: one PASS/FAIL line per check.
#
#   scripts/gpu-check.sh export IMAGE DIR   (where Docker is) copy out of IMAGE what it
#                                           carries: DIR/files/*.json, DIR/physx/<version>/
#   scripts/gpu-check.sh DIR                (on the GPU machine, as root) run the checks
#
# DIR may also hold gl/*.deb (Debian's libvulkan1 libegl1 libglvnd0 libopengl0 libgl1
# libglx0 libgles2, unpacked when the machine has no Vulkan or EGL loader; gl/x/*.deb:
# libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 where it has no libX11) and Python packages
# the machine lacks: site/ (put on PYTHONPATH) or *.tar.xz (unpacked into one). See
# bench/README.md ("GPU check") for what to carry and the figures of the last run.
set -u

if [ "${1:-}" = export ]; then
    image=${2:?usage: gpu-check.sh export IMAGE DIR} dir=${3:?usage: gpu-check.sh export IMAGE DIR}
    mkdir -p "$dir/files" || exit 1
    id=$(docker create "$image" true) || exit 1
    trap 'docker rm -f "$id" >/dev/null' EXIT
    for path in /usr/share/vulkan/icd.d/nvidia_icd.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json \
        /etc/vulkan/implicit_layer.d/nvidia_layers.json; do
        docker cp -L "$id:$path" "$dir/files/" || exit 1
    done
    if docker cp -L "$id:/usr/local/lib/sapien-physx" "$dir/physx" 2>/dev/null; then
        echo "copied the vendor files and the baked PhysX GPU library into $dir"
    else
        echo "copied the vendor files into $dir; $image bakes no PhysX GPU library (the ManiSkill GPU check will fail)"
    fi
    exit 0
fi

DIR=$(cd "${1:?usage: gpu-check.sh DIR (or: gpu-check.sh export IMAGE DIR)}" && pwd) || exit 2
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
PY=${PYTHON:-python3}
failures=0

# result NAME STATUS DETAIL: the one line per check.
result() {
    if [ "$2" -eq 0 ]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; failures=$((failures + 1)); fi
}

# check NAME SECONDS COMMAND...: runs it with a timeout; its last output line is the detail.
check() {
    local name=$1 seconds=$2 status detail
    shift 2
    timeout "$seconds" "$@" >"$WORK/$name.log" 2>&1
    status=$?
    [ "$status" -eq 124 ] && echo "timed out after $seconds s" >>"$WORK/$name.log"
    detail=$(grep -v '^\s*$' "$WORK/$name.log" | tail -1)
    result "$name" "$status" "${detail:-no output} (log: $WORK/$name.log)"
}

# The image's layout: loaders from the debs where the machine has none, the driver's
# libraries on the linker path (what the NVIDIA container toolkit does), Python packages.
setup() {
    local deb site=$WORK/site archive
    if ! ldconfig -p | grep -q 'libvulkan.so.1 ' || ! ldconfig -p | grep -q 'libEGL.so.1 '; then
        for deb in "$DIR"/gl/*.deb; do [ -f "$deb" ] && dpkg -x "$deb" /; done
    fi
    # SAPIEN links libX11: from gl/x/*.deb where the machine has none, beside /, not in it.
    if ! ldconfig -p | grep -q 'libX11.so.6 '; then
        for deb in "$DIR"/gl/x/*.deb; do [ -f "$deb" ] && dpkg -x "$deb" "$WORK/x"; done
        export LD_LIBRARY_PATH=$WORK/x/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    fi
    for lib in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
        [ -d "$lib" ] && echo "$lib" >>/etc/ld.so.conf.d/zz-gpu-check.conf
    done
    ldconfig
    mkdir -p "$site"
    for archive in "$DIR"/*.tar.xz; do [ -f "$archive" ] && tar -C "$site" -xJf "$archive"; done
    export PYTHONPATH=$DIR/site:$site${PYTHONPATH:+:$PYTHONPATH}
    mkdir -p "$WORK/layers" && cp "$DIR/files/nvidia_layers.json" "$WORK/layers/"
    # The loaders read the image's files only: a driver file elsewhere must not make a check pass.
    export VK_DRIVER_FILES=$DIR/files/nvidia_icd.json VK_ICD_FILENAMES=$DIR/files/nvidia_icd.json \
        VK_ADD_IMPLICIT_LAYER_PATH=$WORK/layers \
        __EGL_VENDOR_LIBRARY_FILENAMES=$DIR/files/10_nvidia.json \
        NVIDIA_DRIVER_CAPABILITIES=all HDF5_USE_FILE_LOCKING=FALSE
    # The image links ~/.sapien/physx/<version> to its one copy: the same under a scratch HOME.
    export HOME=$WORK/home
    mkdir -p "$HOME/.sapien/physx"
    for version in "$DIR"/physx/*/; do
        [ -f "$version/libPhysXGpu_64.so" ] && ln -sfn "${version%/}" "$HOME/.sapien/physx/$(basename "$version")"
    done
}

setup
echo "gpu-check: files from $DIR, logs in $WORK"
check nvidia-smi 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
check vulkan 60 "$PY" "$(dirname "$0")/gpu_probes.py" vulkan
check egl 60 "$PY" "$(dirname "$0")/gpu_probes.py" egl
check mujoco-egl 60 env MUJOCO_GL=egl "$PY" "$(dirname "$0")/gpu_probes.py" mujoco
check sapien-render 90 "$PY" "$(dirname "$0")/gpu_probes.py" sapien
check maniskill-gpu-physics 200 "$PY" "$(dirname "$0")/gpu_probes.py" maniskill
# The image's own canary, from this checkout (pod-canary --check NAME runs one check).
if ENTRYPOINT_BIN=$(cd "$(dirname "$0")/../src/imagebuild/entrypoint/bin" 2>/dev/null && pwd); then
    check pod-canary 60 env PATH="$ENTRYPOINT_BIN:$PATH" POD_REQUIRE_GPU=1 "$PY" "$ENTRYPOINT_BIN/pod-canary"
else
    result pod-canary 1 "no checkout beside this script (src/imagebuild/entrypoint/bin): copy the repository"
fi
echo "gpu-check: $failures check(s) failed"
[ "$failures" -eq 0 ]
