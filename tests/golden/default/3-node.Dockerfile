# imagebuild layer "node": Node.js 22 and Claude Code (latest).
FROM ghcr.io/you/research-pod:python-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SOURCE_DATE_EPOCH=0

# Claude Code must not update itself out of the version this image pins.
ENV DISABLE_AUTOUPDATER=1

RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=install-node.py,target=/tmp/install-node.py \
    --mount=type=cache,id=imagebuild-npm,target=/root/.npm,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && python3 /tmp/install-node.py 22 10 \
 && record_version node node "$(node --version)" \
 && npm install --global --no-fund --no-audit --loglevel=error "@anthropic-ai/claude-code@latest" \
 && record_version node claude_code "$(claude --version | cut -d' ' -f1)" \
 && record_version node npm "$(npm --version)" \
 && normalise_layer
