# imagebuild layer "runtime": entrypoint, helper commands, labels.
FROM ghcr.io/you/research-pod:sim-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY entrypoint/ /usr/local/lib/imagebuild/entrypoint/
RUN /usr/local/lib/imagebuild/entrypoint/install.sh

LABEL org.opencontainers.image.title="ghcr.io/you/research-pod" \
      imagebuild.version="0.1.0" \
      imagebuild.spec-hash="4d7b2eaab23cbbe313c30882760c5c92ea923f202c222093a566956e98897c26" \
      imagebuild.cuda="12.8" \
      imagebuild.base="nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04"

EXPOSE 22 8888
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/pod-entrypoint"]
CMD ["sleep", "infinity"]
