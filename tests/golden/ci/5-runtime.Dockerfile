# imagebuild layer "runtime": entrypoint, helper commands, labels.
FROM imagebuild-test/pod:sim-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY entrypoint/ /usr/local/lib/imagebuild/entrypoint/
RUN /usr/local/lib/imagebuild/entrypoint/install.sh

LABEL org.opencontainers.image.title="imagebuild-test/pod" \
      imagebuild.version="0.1.0" \
      imagebuild.spec-hash="590223d402831885f5ce1351394620f40b3b5fa95b2f8a33148ef0c19a66367e" \
      imagebuild.cuda="" \
      imagebuild.base="imagebuild-test/debian:bookworm"

EXPOSE 22 8888
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/pod-entrypoint"]
CMD ["sleep", "infinity"]
