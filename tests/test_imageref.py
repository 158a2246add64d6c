"""One image-reference parser: registry ports, tags and digests told apart the way
docker tells them apart, for every caller (pull, tag, push, registry credentials,
pod names, the spec's no-tag rule)."""

from __future__ import annotations

import pytest

from imagebuild.image.spec import SpecError, parse_spec
from imagebuild.imageref import ImageRef, parse
from imagebuild.pods.localrun import default_name
from imagebuild.runpod.registries import registry_of

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("reference", "expected"), [
    ("ghcr.io/you/pod", ImageRef("ghcr.io/you/pod")),
    ("you/pod:v1", ImageRef("you/pod", "v1")),
    ("127.0.0.1:5000/you/pod", ImageRef("127.0.0.1:5000/you/pod")),  # a port, not a tag
    ("127.0.0.1:5000/you/pod:system-3f9c2a1b7d4e", ImageRef("127.0.0.1:5000/you/pod", "system-3f9c2a1b7d4e")),
    (f"ghcr.io/you/pod@{DIGEST}", ImageRef("ghcr.io/you/pod", None, DIGEST)),
    (f"localhost:5000/pod:v1@{DIGEST}", ImageRef("localhost:5000/pod", "v1", DIGEST)),
])
def test_parse(reference, expected):
    assert parse(reference) == expected


def test_what_the_callers_read_from_it():
    assert parse("127.0.0.1:5000/pod").with_tag() == "127.0.0.1:5000/pod:latest"
    assert parse(f"pod@{DIGEST}").with_tag() == f"pod@{DIGEST}"
    assert registry_of(f"127.0.0.1:5000/you/pod:v1@{DIGEST}") == "127.0.0.1:5000"
    assert registry_of("you/pod:v1") == "docker.io"
    assert default_name(f"localhost:5000/you/Research_Pod:v1@{DIGEST}") == "research-pod"
    # The spec's image.name is a repository: a port is fine, a tag is not.
    assert parse_spec({"image": {"name": "127.0.0.1:5000/you/pod"}}, "t.toml").image.name
    with pytest.raises(SpecError, match="no tag"):
        parse_spec({"image": {"name": "127.0.0.1:5000/you/pod:v1"}}, "t.toml")
