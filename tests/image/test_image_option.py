"""The suite runs the image it is told to: `--image REF` and $IMAGEBUILD_TEST_IMAGE
both reach it (checked with a reference no engine has, which must fail naming it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

HERE = Path(__file__).resolve().parent
MISSING = "127.0.0.1:9/imagebuild-test/no-such-pod:missing"  # port 9: refused at once
NESTED = "IMAGEBUILD_IMAGE_SUITE_NESTED"


@pytest.mark.parametrize("how", ["option", "env"])
def test_image_under_test_is_selectable(how, engine):
    if os.environ.get(NESTED):
        pytest.skip("inside the nested run")
    env = {**os.environ, NESTED: "1"}
    env.pop("IMAGEBUILD_TEST_IMAGE", None)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
            str(HERE / "test_image_contents.py")]
    if how == "option":
        argv += ["--image", MISSING]
    else:
        env["IMAGEBUILD_TEST_IMAGE"] = MISSING
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env,
                          cwd=HERE.parent.parent)
    assert done.returncode == 1, done.stdout[-3000:]
    assert f"image under test {MISSING} (--image / $IMAGEBUILD_TEST_IMAGE) is not in the engine" \
        in done.stdout, done.stdout[-3000:]
