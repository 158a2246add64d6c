# imagebuild layer "sim": simulators and RL libraries in the baked environment.
FROM ghcr.io/you/research-pod:node-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SOURCE_DATE_EPOCH=0

# MuJoCo renders headless through the NVIDIA EGL vendor file; on a CPU-only
# machine set MUJOCO_GL=osmesa. (MuJoCo sets PYOPENGL_PLATFORM to match itself.)
ENV MUJOCO_GL=egl

RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && uv pip install --python /opt/venv/bin/python --torch-backend=cu128 \
        mujoco \
        gymnasium \
        mani-skill==3.0.1 \
        stable-baselines3 \
 && uv pip freeze --python /opt/venv/bin/python > /usr/local/share/imagebuild/versions/sim-freeze.txt \
 && normalise_layer

# SAPIEN's PhysX GPU library (sim_backend="physx_cuda"): one copy, linked from root's
# and dev's ~/.sapien, so enable_gpu() finds it instead of downloading it at each restart.
# The script stays in the image (a later download by hand); the zip is only mounted.
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=bake-physx.sh,target=/tmp/bake-physx.sh \
    . /usr/local/lib/imagebuild/build-env.sh \
 && install -m 0755 /tmp/bake-physx.sh /usr/local/lib/imagebuild/bake-physx.sh \
 && /usr/local/lib/imagebuild/bake-physx.sh download /tmp/imagebuild-physx/linux-so.zip /usr/local/lib/sapien-physx \
 && normalise_layer
