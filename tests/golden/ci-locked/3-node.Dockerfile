# imagebuild layer "node": Node.js 22 and Claude Code (latest).
FROM imagebuild-test/pod:python-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SOURCE_DATE_EPOCH=1764460800

# Claude Code must not update itself out of the version this image pins.
ENV DISABLE_AUTOUPDATER=1

# Locked: each tarball must carry the lock's sha512 integrity (npm checks Claude
# Code's tarballs against the registry's integrity, checked here against the lock).
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,source=install-node.py,target=/tmp/install-node.py \
    --mount=type=cache,id=imagebuild-npm,target=/root/.npm,sharing=locked \
    . /usr/local/lib/imagebuild/build-env.sh \
 && python3 /tmp/install-node.py 22.21.1 10.9.4 \
        sha512-bm9kZQ== sha512-bnBt== \
 && record_version node node "$(node --version)" \
 && python3 /tmp/install-node.py --verify @anthropic-ai/claude-code 2.1.19 sha512-Y2xhdWRl== \
 && npm install --global --no-fund --no-audit --loglevel=error "@anthropic-ai/claude-code@2.1.19" \
 && record_version node claude_code "$(claude --version | cut -d' ' -f1)" \
 && record_version node npm "$(npm --version)" \
 && normalise_layer
