# imagebuild layer "runtime": entrypoint, helper commands, the lock, labels.
FROM imagebuild-test/pod:sim-<hash>

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

LABEL org.opencontainers.image.title="imagebuild-test/pod" \
      imagebuild.version="0.1.0" \
      imagebuild.spec-hash="fe96da2ccb4f745b4a6d755811e32d01e78aaf9afbb1412328a044a545941021" \
      imagebuild.lock-hash="" \
      imagebuild.cuda="" \
      imagebuild.base="imagebuild-test/debian:bookworm"

EXPOSE 22 8888
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/pod-entrypoint"]
CMD ["sleep", "infinity"]
