#!/usr/bin/env bash
# gpu-canary-device.sh — the GPU canary measured on a lent GPU machine (NVIDIA driver, no
# Docker, no network) in one call, from the image's own files:
#
#   scripts/gpu-canary-device.sh prepare IMAGE [DIR]  here (Docker, the package registries):
#       DIR (default .devchk/, ignored by git, at most 64 MiB) gets what gpu-check.sh export
#       copies out of IMAGE (its entrypoint with pod-canary and pod-gpu-probe, vulkaninfo,
#       the NVIDIA vendor files, the baked PhysX GPU library), gl/*.deb and gl/x/*.deb (the
#       image's own versions of the Vulkan/EGL loaders and X/Wayland client libraries, by
#       `apt-get download`), and site.tar.xz: the image's GPU Python packages (its versions)
#       as wheels for the device's Python (DEVICE_PYTHON, default 3.12), trimmed to fit.
#   scripts/gpu-canary-device.sh run [DIR]      on the GPU machine: `pod-canary --json` and
#       the longer probes (gpu-check.sh); $OUT gets pod-canary.json, table.md (each check's
#       verdict, figure and seconds, the whole canary's against its 30 s target),
#       results.json, each probe's log, machine.txt and gpu-check.txt. Exit 1: a check failed.
#   scripts/gpu-canary-device.sh dry-run [DIR]  here: the same run without a GPU (every GPU
#       check skips "no NVIDIA GPU"); $OUT defaults to a scratch folder.
#
# The device call:  run(command="bash scripts/gpu-canary-device.sh run", carry=[".devchk"])
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIMIT_MIB=64  # what the device tool carries
GL_DEBS="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"
X_DEBS="libx11-6 libx11-data libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libwayland-client0 libffi8"
# What the GPU probes import and the device machine lacks (it has torch, numpy, scipy, h5py,
# opencv, imageio, matplotlib): taken in the image's versions, where the image has them.
WHEELS="mujoco mujoco-core pyopengl glfw sapien mani-skill gymnasium farama-notifications dacite
transforms3d trimesh gitpython gitdb smmap tyro docstring-parser typeguard shtab defusedxml pyperclip
importlib-resources pytorch-kinematics arm-pytorch-utilities pytorch-seed requests urllib3 idna
certifi charset-normalizer"

prepare() {
    local image=${1:?usage: gpu-canary-device.sh prepare IMAGE [DIR]} dir=${2:-.devchk}
    local python=${DEVICE_PYTHON:-3.12} name versions wheels=() build
    mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
    bash "$here/gpu-check.sh" export "$image" "$dir" || return 1
    # The image's own package versions (dpkg and its venv), so the device runs what the pod would.
    versions=$(docker run --rm --entrypoint sh "$image" -c \
        "dpkg-query -W -f '\${Package}=\${Version}\n'; /opt/venv/bin/python -m pip list --format=freeze 2>/dev/null" |
        tr 'A-Z_' 'a-z-') || return 1
    rm -rf "$dir/gl" && mkdir -p "$dir/gl/x"
    debs() {  # FOLDER NAME...: apt-get download, in the image's versions where it has the package
        local folder=$1 pins=() pin
        shift
        for name in "$@"; do
            pin=$(grep -m1 -E "^$name(:amd64)?=" <<<"$versions" | sed 's/:amd64=/=/')
            pins+=("${pin:-$name}")
        done
        (cd "$folder" && apt-get download -q -o APT::Sandbox::User=root "${pins[@]}") >/dev/null || {
            echo "gpu-canary-device: apt-get download ${pins[*]} failed (run apt-get update first)" >&2
            return 1
        }
    }
    # shellcheck disable=SC2086 # word lists
    debs "$dir/gl" $GL_DEBS && debs "$dir/gl/x" $X_DEBS || return 1
    for name in $WHEELS; do
        wheels+=($(grep -m1 -E "^$name==" <<<"$versions"))
    done
    build=$(mktemp -d /tmp/gpu-canary-site.XXXXXX)
    if [ "${#wheels[@]}" -gt 0 ]; then
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python" \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "$build/wheels" "${wheels[@]}" || return 1
        mkdir -p "$build/site"
        for wheel in "$build"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$build/site"; done
        # To fit the limit (what a probe never loads): SAPIEN's patterns, headers and macOS
        # libraries; ManiSkill's environment maps and every robot but the panda; MuJoCo's headers.
        rm -rf "$build"/site/sapien/sensor/assets/patterns "$build"/site/sapien/include \
            "$build"/site/mani_skill/assets/environment_maps "$build"/site/mujoco/include \
            "$build"/site/mani_skill/assets/robots/panda/{realsense2_description,sciurus17_description}
        find "$build/site" -name '*.dylib' -delete
        # mani_skill imports IPython.display at start (for notebooks): two names stand in for it.
        if [ -d "$build/site/mani_skill" ] && [ ! -d "$build/site/IPython" ]; then
            mkdir -p "$build/site/IPython"
            printf 'HTML = display = lambda *args, **kwargs: None\n' >"$build/site/IPython/display.py"
            : >"$build/site/IPython/__init__.py"
        fi
        find "$build/site/mani_skill/assets/robots" -mindepth 1 -maxdepth 1 ! -name panda \
            -exec rm -rf {} + 2>/dev/null
        tar -C "$build/site" -cf - . | xz -6 -T0 >"$dir/site.tar.xz"
    fi
    rm -rf "$build"
    local mib
    mib=$(du -sm "$dir" | cut -f1)
    echo "gpu-canary-device: $dir holds ${#wheels[@]} wheels (Python $python), the image's canary and" \
        "loaders: $mib MiB of $LIMIT_MIB"
    [ "$mib" -le "$LIMIT_MIB" ] || { echo "gpu-canary-device: $dir is over $LIMIT_MIB MiB: trim site.tar.xz" >&2; return 1; }
}

case ${1:-} in
    prepare) shift; prepare "$@" ;;
    run | dry-run)
        mode=$1 dir=${2:-.devchk}
        [ -d "$dir" ] || { echo "gpu-canary-device: no $dir: run gpu-canary-device.sh prepare IMAGE first" >&2; exit 2; }
        OUT=${OUT:-$(mktemp -d /tmp/gpu-canary.XXXXXX)}
        export OUT
        mkdir -p "$OUT"
        {
            date -u +%FT%TZ; uname -r; head -2 /etc/os-release 2>/dev/null; python3 --version
            command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
            command -v docker podman || echo "no container engine"
        } >"$OUT/machine.txt" 2>&1
        if [ "$mode" = run ]; then flags=(); else flags=(--dry-run); fi
        bash "$here/gpu-check.sh" "${flags[@]}" "$dir" 2>&1 | tee "$OUT/gpu-check.txt"
        exit "${PIPESTATUS[0]}" ;;
    *) echo "usage: gpu-canary-device.sh prepare IMAGE [DIR] | run [DIR] | dry-run [DIR]" >&2; exit 2 ;;
esac
