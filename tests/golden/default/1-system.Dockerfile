# imagebuild layer "system": OS packages, NVIDIA Vulkan/EGL vendor files, sshd, the dev user.
# Works on Ubuntu (nvidia/cuda bases) and Debian.
FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=all \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8
ARG SOURCE_DATE_EPOCH=0

# Empty files and folders where BuildKit mounts /etc/hosts, /etc/resolv.conf and the
# caches: where they are missing, BuildKit makes and removes them around each RUN,
# and the folders holding them get the build's time: no two layers would match.
ADD stubs.tar /

# Apt lists and downloaded debs live in cache mounts, never in the layer.
# docker-clean (Debian/Ubuntu images) would empty the cache mount after each step.
# Files come in through bind mounts, not COPY: COPY stamps the folders it creates
# with the build's time, and the layer would differ from build to build.
# ManiSkill/SAPIEN find the NVIDIA driver's Vulkan and EGL entry points through the
# vendor files; the driver libraries themselves come from the host at run time.
# A fixed uid keeps files on the volume owned by dev across images; Ubuntu bases
# ship an "ubuntu" user on uid 1000.
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,target=/tmp/context \
    --mount=type=cache,id=imagebuild-apt-cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,id=imagebuild-apt-lists,target=/var/lib/apt/lists,sharing=locked \
    . /tmp/context/build-env.sh \
 && if [ -e /etc/apt/apt.conf.d/docker-clean ]; then : >/etc/apt/apt.conf.d/docker-clean; fi \
 && install -D -m 0644 /tmp/context/build-env.sh /usr/local/lib/imagebuild/build-env.sh \
 && apt_install \
        build-essential \
        ca-certificates \
        curl \
        git \
        git-lfs \
        less \
        libegl1 \
        libgl1 \
        libglib2.0-0 \
        libglvnd0 \
        libglx0 \
        libosmesa6 \
        libvulkan1 \
        libxext6 \
        locales \
        nano \
        openssh-server \
        procps \
        python3 \
        python3-venv \
        rclone \
        rsync \
        sudo \
        tini \
        tmux \
        vulkan-tools \
 && mkdir -p /run/sshd \
 && rm -f /etc/ssh/ssh_host_* \
 && record_version system os "$(. /etc/os-release && echo "$PRETTY_NAME")" \
 && install -D -m 0644 /tmp/context/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
 && install -D -m 0644 /tmp/context/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json \
 && install -D -m 0644 /tmp/context/nvidia_layers.json /etc/vulkan/implicit_layer.d/nvidia_layers.json \
 && if id -u ubuntu >/dev/null 2>&1; then userdel -r ubuntu; fi \
 && useradd --create-home --uid 1000 --shell /bin/bash dev \
 && normalise_layer
