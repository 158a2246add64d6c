#!/usr/bin/env bash
# gpu-check.sh — check a GPU machine WITHOUT Docker with the pod image's own files: its
# canary (pod-canary, as every pod start runs it), then its longer GPU probes
# (pod-gpu-probe mujoco-egl, sapien-vulkan, maniskill-cpu, maniskill-gpu), against the
# image's NVIDIA vendor files and its baked PhysX GPU library. One line per check.
#
#   scripts/gpu-check.sh export IMAGE DIR   (where Docker is) copy out of IMAGE what it
#                                           carries: DIR/entrypoint/ (pod-canary and its
#                                           probes), DIR/bin/vulkaninfo, DIR/files/*.json,
#                                           DIR/physx/<version>/, DIR/config.env (its CUDA_VERSION)
#   scripts/gpu-check.sh DIR                (on the GPU machine) run the checks; a missing GPU fails
#   scripts/gpu-check.sh --dry-run DIR      (anywhere) the same, where no GPU means "skip"
#
# Writes nothing outside a scratch folder and $OUT (default: the scratch folder): the
# canary's report (pod-canary.json), each probe's (NAME.json, NAME.log), results.tsv and
# table.md (each check's verdict, figure and seconds; the canary's wall time).
# GPU_CHECK_PROBES: the longer probes to run (default all four; "" none).
#
# DIR may also hold gl/*.deb (Debian's libvulkan1 libegl1 libglvnd0 libopengl0 libgl1
# libglx0 libgles2, used where the machine has no Vulkan or EGL loader; gl/x/*.deb: libx11-6
# libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libwayland-client0 libffi8, where it lacks those)
# and Python packages the machine lacks: site/ (put on PYTHONPATH) or *.tar.xz (unpacked
# into one). scripts/gpu-canary-device.sh prepares it; bench/README.md ("GPU check") says more.
set -u

ENTRYPOINT=/usr/local/lib/imagebuild/entrypoint  # imagebuild.contract.ENTRYPOINT_DIR

if [ "${1:-}" = export ]; then
    image=${2:?usage: gpu-check.sh export IMAGE DIR} dir=${3:?usage: gpu-check.sh export IMAGE DIR}
    mkdir -p "$dir/files" "$dir/bin" || exit 1
    id=$(docker create "$image" true) || exit 1
    trap 'docker rm -f "$id" >/dev/null' EXIT
    for path in /usr/share/vulkan/icd.d/nvidia_icd.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json \
        /etc/vulkan/implicit_layer.d/nvidia_layers.json; do
        docker cp -L "$id:$path" "$dir/files/" || exit 1
    done
    rm -rf "$dir/entrypoint"
    docker cp -L "$id:$ENTRYPOINT" "$dir/entrypoint" || exit 1
    docker cp -L "$id:/usr/bin/vulkaninfo" "$dir/bin/vulkaninfo" || exit 1
    # What an nvidia/cuda base sets and the canary reads (the driver's floor, when image.env names none).
    docker image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$image" |
        grep -E '^CUDA_VERSION=' >"$dir/config.env"
    rm -rf "$dir/physx"
    if docker cp -L "$id:/usr/local/lib/sapien-physx" "$dir/physx" 2>/dev/null; then
        echo "copied the image's canary, vendor files and baked PhysX GPU library into $dir"
    else
        echo "copied the image's canary and vendor files into $dir; $image bakes no PhysX GPU library" \
            "(the GPU physics checks will skip)"
    fi
    exit 0
fi

dry_run=0
if [ "${1:-}" = --dry-run ]; then dry_run=1; shift; fi
usage="usage: gpu-check.sh [--dry-run] DIR (or: gpu-check.sh export IMAGE DIR)"
DIR=$(cd "${1:?$usage}" && pwd) || exit 2
[ -x "$DIR/entrypoint/bin/pod-canary" ] || { echo "gpu-check: $DIR/entrypoint/bin/pod-canary is missing: run gpu-check.sh export IMAGE $1 first" >&2; exit 2; }
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
PROBES=${GPU_CHECK_PROBES-mujoco-egl sapien-vulkan maniskill-cpu maniskill-gpu}
here=$(cd "$(dirname "$0")" && pwd)

# has LIB: the machine's linker knows LIB.
has() { ldconfig -p 2>/dev/null | grep -q " $1 "; }

# The image's layout, without writing outside $WORK: loaders from the debs where the machine
# has none, the driver's libraries on the linker path (what the NVIDIA container toolkit
# does), Python packages, the loaders pointed at the image's vendor files alone.
setup() {
    local deb site=$WORK/site archive libs=""
    if ! has libvulkan.so.1 || ! has libEGL.so.1; then
        for deb in "$DIR"/gl/*.deb; do [ -f "$deb" ] && dpkg -x "$deb" "$WORK/gl"; done
        libs=$WORK/gl/usr/lib/x86_64-linux-gnu
    fi
    # vulkaninfo and SAPIEN link libX11 and friends: from gl/x/*.deb where the machine has none.
    if ! has libX11.so.6 || ! has libxcb.so.1 || ! has libwayland-client.so.0; then
        for deb in "$DIR"/gl/x/*.deb; do [ -f "$deb" ] && dpkg -x "$deb" "$WORK/x"; done
        libs=${libs:+$libs:}$WORK/x/usr/lib/x86_64-linux-gnu
    fi
    for lib in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$lib" ] && libs=${libs:+$libs:}$lib; done
    [ -n "$libs" ] && export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
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
    # The image's tools first; PYTHON: the interpreter its probes run with (python3 on PATH).
    export PATH=$DIR/entrypoint/bin:$DIR/bin${PYTHON:+:$(dirname "$PYTHON")}:$PATH
    set -a
    # shellcheck disable=SC1091 # written by export
    [ -f "$DIR/config.env" ] && . "$DIR/config.env"
    set +a
    if [ "$dry_run" -eq 0 ]; then export POD_REQUIRE_GPU=1; else unset POD_REQUIRE_GPU RUNPOD_GPU_COUNT; fi
}

setup
echo "gpu-check: the canary and probes of $DIR, results in $OUT"
# results.tsv: NAME, exit status, start and end (seconds since the epoch).
started=$EPOCHREALTIME
timeout 60 python3 "$DIR/entrypoint/bin/pod-canary" --json --report "$OUT/pod-canary.json" \
    >"$OUT/pod-canary.log" 2>&1
echo "pod-canary	$?	$started	$EPOCHREALTIME" >"$OUT/results.tsv"
# Without a GPU (the canary's driver check says so) the longer probes are skipped unrun.
no_gpu=$(python3 - "$OUT/pod-canary.json" <<'PY' 2>/dev/null
import json, sys
checks = json.load(open(sys.argv[1]))["checks"]
print(next((c["figure"].split(" (")[0] for c in checks if c["name"] == "driver" and c["figure"].startswith("no NVIDIA GPU")), ""))
PY
)
for name in $PROBES; do
    # Within one device call (600 s at most): the canary 60, these 60 + 60 + 120 + 200.
    case $name in maniskill-gpu) seconds=200 ;; maniskill-cpu) seconds=120 ;; *) seconds=60 ;; esac
    if [ -n "$no_gpu" ]; then
        echo "{\"skip\": \"$no_gpu\"}" >"$OUT/$name.json"
        echo "$name	0	0	0" >>"$OUT/results.tsv"
        continue
    fi
    started=$EPOCHREALTIME
    timeout "$seconds" pod-gpu-probe "$name" >"$OUT/$name.log" 2>&1
    status=$?
    [ "$status" -eq 124 ] && echo "$name: timed out after $seconds s" >>"$OUT/$name.log"
    grep -v '^\s*$' "$OUT/$name.log" | tail -1 >"$OUT/$name.json"
    echo "$name	$status	$started	$EPOCHREALTIME" >>"$OUT/results.tsv"
done
python3 "$here/gpu_check_report.py" "$OUT"
