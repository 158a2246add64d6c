# imagebuild layer "python": pinned uv, Python 3.11 (system), the baked environment /opt/venv.
FROM imagebuild-test/pod:system-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SOURCE_DATE_EPOCH=1764460800

# The baked Python lives on the image (/opt/uv/python); the pod's shells send Pythons
# installed later to the volume instead (entrypoint/shell/pod-env.sh).
ENV UV_PYTHON_INSTALL_DIR=/opt/uv/python \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# uv comes from its wheel on the package index, so a pip mirror or proxy serves it too.
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=uv-requirements.txt,target=/tmp/context/uv-requirements.txt \
    --mount=type=cache,id=imagebuild-pip,target=/root/.cache/pip,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && python3 -m venv /tmp/uv-bootstrap \
 && /tmp/uv-bootstrap/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        -r /tmp/context/uv-requirements.txt \
 && install -m 0755 /tmp/uv-bootstrap/bin/uv /tmp/uv-bootstrap/bin/uvx /usr/local/bin/ \
 && rm -rf /tmp/uv-bootstrap \
 && record_version python uv "$(uv --version | cut -d' ' -f2)" \
 && normalise_layer

# The profile script must contain a literal $PATH, expanded at login, not now.
# compileall: the venv's own _virtualenv.py as a checked-hash .pyc, before any run of the
# venv's python writes it with the install time (the chunks compile only their packages).
# hadolint ignore=SC2016
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && uv venv --python /usr/bin/python3 /opt/venv \
 && /opt/venv/bin/python -m compileall -q -f /opt/venv/lib \
 && record_version python python "$(/opt/venv/bin/python -c 'import platform; print(platform.python_version())')" \
 && printf '%s\n' '# imagebuild: the baked environment first, for login shells and SSH sessions too' \
        'case ":$PATH:" in *:/opt/venv/bin:*) ;; *) PATH="/opt/venv/bin:$PATH" ;; esac' \
        > /etc/profile.d/10-imagebuild-venv.sh \
 && normalise_layer

# The locked packages, one layer per chunk (image/chunks.py).
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=chunks/python-pkg-wandb.txt,target=/tmp/context/chunk.txt \
    --mount=type=bind,source=compile-chunk.py,target=/tmp/context/compile-chunk.py \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && : imagebuild-chunk=python/pkg-wandb packages=wandb \
 && export PYTHONDONTWRITEBYTECODE=1 \
 && UV_COMPILE_BYTECODE=0 uv pip install --python /opt/venv/bin/python --no-deps --require-hashes \
        -r /tmp/context/chunk.txt \
 && /opt/venv/bin/python /tmp/context/compile-chunk.py /tmp/context/chunk.txt

RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=chunks/python-rest-0.txt,target=/tmp/context/chunk.txt \
    --mount=type=bind,source=compile-chunk.py,target=/tmp/context/compile-chunk.py \
    --mount=type=cache,id=imagebuild-uv,target=/root/.cache/uv,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && : imagebuild-chunk=python/rest-0 packages=pip \
 && export PYTHONDONTWRITEBYTECODE=1 \
 && UV_COMPILE_BYTECODE=0 uv pip install --python /opt/venv/bin/python --no-deps --require-hashes \
        -r /tmp/context/chunk.txt \
 && /opt/venv/bin/python /tmp/context/compile-chunk.py /tmp/context/chunk.txt

