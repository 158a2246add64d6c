"""Image references (``[registry[:port]/]path[:tag][@digest]``): the one place they are
taken apart. Stdlib only (the spec validates with it; the docker SDK takes ~0.5 s to
import): the split is docker's own ``parse_repository_tag`` rule, a ``:`` after the last
``/`` is a tag, one before it a registry port; the registry is the SDK's answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageRef:
    repository: str  # registry and path, without tag or digest: ghcr.io/you/research-pod
    tag: str | None = None  # "v1", "3f9c2a1b7d4e"
    digest: str | None = None  # "sha256:..."

    @property
    def name(self) -> str:
        """The last path component: ``research-pod``."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def registry(self) -> str:
        """``ghcr.io`` for ``ghcr.io/you/pod``; ``docker.io`` for ``you/pod`` (docker's rule)."""
        from docker.auth import resolve_repository_name

        return resolve_repository_name(self.repository)[0]

    def with_tag(self, default: str = "latest") -> str:
        """The reference as pulled: with its tag (``default`` when it has none) or digest."""
        if self.digest:
            return f"{self.repository}{':' + self.tag if self.tag else ''}@{self.digest}"
        return f"{self.repository}:{self.tag or default}"


def parse(reference: str) -> ImageRef:
    """Split ``reference`` (checked elsewhere: the spec's and the flags' own grammars)."""
    rest, at, digest = reference.partition("@")
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:  # a tag, not a registry port
        repository, _, tag = rest.rpartition(":")
        return ImageRef(repository, tag, digest if at else None)
    return ImageRef(rest, None, digest if at else None)
