# imagebuild layer "runtime": entrypoint, helper commands, labels.
FROM ghcr.io/you/research-pod:sim-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY entrypoint/ /usr/local/lib/imagebuild/entrypoint/
RUN /usr/local/lib/imagebuild/entrypoint/install.sh

LABEL org.opencontainers.image.title="ghcr.io/you/research-pod" \
      imagebuild.version="0.1.0" \
      imagebuild.spec-hash="521a91eebd48745dbf57fd67e1f260de36fe8f00ee0769b41d5f8e53d93e7bef" \
      imagebuild.cuda="12.8" \
      imagebuild.base="nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04"

EXPOSE 22 8888
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/pod-entrypoint"]
CMD ["sleep", "infinity"]
