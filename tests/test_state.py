"""The files next to the spec: a damaged one is reported, never read as empty; each
spec file has its own."""

from __future__ import annotations

import pytest

from imagebuild.errors import UserError
from imagebuild.image.spec import load_spec
from imagebuild.image.state import read_json, write_json
from imagebuild.project import Project

IMAGE = "reg/x@sha256:" + "a" * 64


def test_missing_state_is_empty(tmp_path):
    (tmp_path / "a.toml").write_text("")
    project = Project(load_spec(tmp_path / "a.toml"))
    assert project.push_state() == {} and project.pushed_image() is None
    assert project.build_record() is None


def test_write_then_read_merges(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"image": IMAGE})
    write_json(path, {"tags": ["t1"]})
    assert read_json(path, "imagebuild push") == {"image": IMAGE, "tags": ["t1"]}


def test_two_specs_in_one_folder_keep_apart(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text(f'[image]\nname = "reg/{name}"\n')
    a, b = (Project(load_spec(tmp_path / f"{name}.toml")) for name in ("a", "b"))
    a.record_push(None, image=IMAGE)
    assert a.pushed_image() == IMAGE and b.pushed_image() is None
    assert a.push_path != b.push_path and a.record_path != b.record_path
    with pytest.raises(UserError, match=r"nothing pushed from .*b\.toml yet"):
        b.default_image()


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('"reg/x@sha256:abc"', "expected a JSON object"),
])
def test_corrupt_state_is_one_line_naming_the_file(tmp_path, content, reason):
    (tmp_path / "imagebuild.toml").write_text("")
    project = Project(load_spec(tmp_path / "imagebuild.toml"))
    for path, read in ((project.push_path, project.pushed_image), (project.record_path, project.build_record)):
        path.parent.mkdir(exist_ok=True)
        path.write_text(content)
        with pytest.raises(UserError) as raised:
            read()
        message = str(raised.value)
        assert path.name in message and reason in message and "\n" not in message
        # Merging into a corrupt file is refused too, instead of silently dropping it.
        with pytest.raises(UserError):
            write_json(path, {"image": "x"})
        assert path.read_text() == content
