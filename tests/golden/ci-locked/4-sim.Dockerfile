# imagebuild layer "sim": simulators and RL libraries in the baked environment.
FROM imagebuild-test/pod:node-<hash> AS prefetch

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=chunks/sim-prefetch.txt,target=/tmp/context/all.txt \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && UV_COMPILE_BYTECODE=0 uv pip install --quiet --python /opt/venv/bin/python --target /tmp/prefetch \
        --link-mode=symlink --no-deps --require-hashes \
        -r /tmp/context/all.txt \
 && echo "wheels in uv's cache" > /imagebuild-prefetched

FROM imagebuild-test/pod:node-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SOURCE_DATE_EPOCH=1764460800

# MuJoCo renders headless through the NVIDIA EGL vendor file; on a CPU-only
# machine set MUJOCO_GL=osmesa. (MuJoCo sets PYOPENGL_PLATFORM to match itself.)
ENV MUJOCO_GL=egl


RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,from=prefetch,source=/imagebuild-prefetched,target=/tmp/prefetched \
    --mount=type=bind,source=chunks/sim-pkg-mujoco.txt,target=/tmp/context/chunk.txt \
    --mount=type=bind,source=compile-chunk.py,target=/tmp/context/compile-chunk.py \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && : imagebuild-chunk=sim/pkg-mujoco packages=mujoco \
 && export PYTHONDONTWRITEBYTECODE=1 \
 && UV_COMPILE_BYTECODE=0 uv pip install --python /opt/venv/bin/python --no-deps --require-hashes \
        -r /tmp/context/chunk.txt \
 && /opt/venv/bin/python /tmp/context/compile-chunk.py /tmp/context/chunk.txt

RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=chunks/sim-pkg-numpy.txt,target=/tmp/context/chunk.txt \
    --mount=type=bind,source=compile-chunk.py,target=/tmp/context/compile-chunk.py \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && : imagebuild-chunk=sim/pkg-numpy packages=numpy \
 && export PYTHONDONTWRITEBYTECODE=1 \
 && UV_COMPILE_BYTECODE=0 uv pip install --python /opt/venv/bin/python --no-deps --require-hashes \
        -r /tmp/context/chunk.txt \
 && /opt/venv/bin/python /tmp/context/compile-chunk.py /tmp/context/chunk.txt

# What the layer resolved (image labels); the check proves the chunks add up to one
# consistent environment (every requirement present, metadata complete).
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && uv pip check --python /opt/venv/bin/python \
 && uv pip freeze --python /opt/venv/bin/python > /usr/local/share/imagebuild/versions/sim-freeze.txt \
 && normalise_layer
