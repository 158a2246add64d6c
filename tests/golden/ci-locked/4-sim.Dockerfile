# imagebuild layer "sim": simulators and RL libraries in the baked environment.
FROM imagebuild-test/pod:node-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SOURCE_DATE_EPOCH=1764460800

# MuJoCo renders headless through the NVIDIA EGL vendor file; on a CPU-only
# machine set MUJOCO_GL=osmesa. (MuJoCo sets PYOPENGL_PLATFORM to match itself.)
ENV MUJOCO_GL=egl

RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=sim-requirements.txt,target=/tmp/context/sim-requirements.txt \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && uv pip install --python /opt/venv/bin/python --no-deps --require-hashes \
        -r /tmp/context/sim-requirements.txt \
 && uv pip freeze --python /opt/venv/bin/python > /usr/local/share/imagebuild/versions/sim-freeze.txt \
 && normalise_layer
