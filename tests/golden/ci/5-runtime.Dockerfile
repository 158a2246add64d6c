# imagebuild layer "runtime": entrypoint, helper commands, labels.
FROM imagebuild-test/pod:sim-<hash>

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY entrypoint/ /usr/local/lib/imagebuild/entrypoint/
RUN /usr/local/lib/imagebuild/entrypoint/install.sh

LABEL org.opencontainers.image.title="imagebuild-test/pod" \
      imagebuild.version="0.1.0" \
      imagebuild.spec-hash="4722820e4a0afe5c9dc84e41605cef73e6286eaf50ffd7b61ec033c17e712363" \
      imagebuild.cuda="" \
      imagebuild.base="imagebuild-test/debian:bookworm"

EXPOSE 22 8888
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/pod-entrypoint"]
CMD ["sleep", "infinity"]
