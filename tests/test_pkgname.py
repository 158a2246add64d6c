"""One PEP 503 normaliser for the host side: the names the spec, the lock, uv's output
and the image's freeze list use compare equal however they are spelled."""

from __future__ import annotations

import pytest

from imagebuild.image.pkgname import canonical, requirement_name


@pytest.mark.parametrize(("name", "expected"), [
    ("Mani_Skill", "mani-skill"),
    ("zope.interface", "zope-interface"),
    ("ruamel__yaml", "ruamel-yaml"),  # runs of separators are one (the old builder copy kept "--")
    ("a-_.b", "a-b"),
    (" Gymnasium ", "gymnasium"),
])
def test_canonical_is_pep_503(name, expected):
    assert canonical(name) == expected


@pytest.mark.parametrize(("requirement", "expected"), [
    ("mani_skill[all]>=3.0", "mani-skill"),
    ("sapien==3.0.3", "sapien"),
    ("torch ; python_version >= '3.10'", "torch"),
    ("Stable_Baselines3~=2.3", "stable-baselines3"),
    ("pkg@ https://example.invalid/pkg.whl", "pkg"),
])
def test_requirement_name(requirement, expected):
    assert requirement_name(requirement) == expected


def test_sapien_detection_and_the_labels_use_it():
    from imagebuild.image.physx import installs_sapien

    assert installs_sapien(["Mani__Skill>=3"]) and not installs_sapien(["mujoco"])
