"""The state file next to the spec: a damaged one is reported, never read as empty."""

from __future__ import annotations

import pytest

from imagebuild.errors import UserError
from imagebuild.image.state import STATE_FILENAME, pushed_image, read_state, write_state


def test_missing_state_is_empty(tmp_path):
    assert read_state(tmp_path) == {}
    assert pushed_image(tmp_path) is None


def test_write_then_read_merges(tmp_path):
    write_state(tmp_path, image="reg/x@sha256:" + "a" * 64)
    write_state(tmp_path, tags=["t1"])
    assert read_state(tmp_path) == {"image": "reg/x@sha256:" + "a" * 64, "tags": ["t1"]}


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('"reg/x@sha256:abc"', "expected a JSON object"),
])
def test_corrupt_state_is_one_line_naming_the_file(tmp_path, content, reason):
    (tmp_path / STATE_FILENAME).write_text(content)
    with pytest.raises(UserError) as raised:
        pushed_image(tmp_path)
    message = str(raised.value)
    assert STATE_FILENAME in message and reason in message and "\n" not in message
    # Writing over a corrupt file is refused too, instead of silently dropping it.
    with pytest.raises(UserError):
        write_state(tmp_path, image="x")
    assert (tmp_path / STATE_FILENAME).read_text() == content
