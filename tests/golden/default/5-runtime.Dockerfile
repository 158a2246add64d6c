# imagebuild layer "runtime": entrypoint, helper commands, the lock, labels.
FROM ghcr.io/you/research-pod:sim-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG SOURCE_DATE_EPOCH=0

# A bind mount and cp, not COPY: COPY stamps the folders it creates with the build's time.
RUN --mount=type=tmpfs,target=/tmp \
    --mount=type=secret,id=ca_bundle,target=/tmp/secrets/ca_bundle \
    --mount=type=bind,target=/tmp/context \
    . /usr/local/lib/imagebuild/build-env.sh \
 && mkdir -p /usr/local/lib/imagebuild/entrypoint /usr/local/share/imagebuild \
 && cp -R /tmp/context/entrypoint/. /usr/local/lib/imagebuild/entrypoint/ \
 && /usr/local/lib/imagebuild/entrypoint/install.sh \
 && normalise_layer

LABEL org.opencontainers.image.title="ghcr.io/you/research-pod" \
      imagebuild.version="0.1.0" \
      imagebuild.spec-hash="0a4c030a90413270f79488db739997d1f992e25b3ae9e7e4e834489ef55abefb" \
      imagebuild.lock-hash="" \
      imagebuild.cuda="12.8" \
      imagebuild.base="nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04"

EXPOSE 22 8888
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/pod-entrypoint"]
CMD ["sleep", "infinity"]
