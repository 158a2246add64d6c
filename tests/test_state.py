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
    a.record_push(None, {"image": IMAGE})
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


def test_a_folder_push_record_from_an_older_imagebuild_moves_to_its_spec_once(tmp_path):
    """The per-folder .imagebuild-state.json of an older imagebuild: read once and moved
    to the spec whose image it records (its pushed lock too); for any other spec of the
    folder it is one line saying what to do, never that spec's image."""
    import json

    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text(f'[image]\nname = "reg/{name}"\n')
    old = tmp_path / ".imagebuild-state.json"
    old.write_text(json.dumps({"image": "reg/a@sha256:" + "a" * 64, "cuda": "12.4",
                               "lock": ".imagebuild-pushed.lock"}))
    (tmp_path / ".imagebuild-pushed.lock").write_text("# the pushed lock\n")
    b = Project(load_spec(tmp_path / "b.toml"))
    with pytest.raises(UserError, match=r"\.imagebuild-state\.json: a push record from an older "
                                        r"imagebuild .* of reg/a, not of reg/b \(b\.toml\): move it") as error:
        b.pushed_image()
    assert "\n" not in str(error.value) and old.exists()
    a = Project(load_spec(tmp_path / "a.toml"))
    assert a.pushed_image() == "reg/a@sha256:" + "a" * 64 and a.pushed_cuda(a.pushed_image()) == "12.4"
    assert not old.exists() and not (tmp_path / ".imagebuild-pushed.lock").exists()
    assert a.pushed_lock_path.read_text() == "# the pushed lock\n"
    assert a.push_state()["lock"] == ".imagebuild/a.pushed.lock"
    assert b.pushed_image() is None  # moved: b reads its own (empty) record from now on


def test_push_checks_its_flags_with_the_build_record_before_any_engine(tmp_path):
    """`push --tag BAD` is one line about the tag (exit 2) even where no engine or
    registry answers: push's settings are checked first, from the build record."""
    import os
    import subprocess
    import sys

    from lockdata import sample_lock

    from imagebuild.image.lock import write_lock

    spec_file = tmp_path / "imagebuild.toml"
    spec_file.write_text('[image]\nname = "reg/x"\n')
    project = Project(load_spec(spec_file))
    lock = sample_lock(project.spec)
    write_lock(project.lock_path, lock)
    project.record_build(project.spec, "reg/x:abc123", ["reg/x:system-1", "reg/x:abc123"], lock)
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"}
    done = subprocess.run([sys.executable, "-m", "imagebuild", "push", "--spec", str(spec_file),
                           "--tag", "Bad Tag!"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "imagebuild: error: --tag 'Bad Tag!': expected a docker tag like \"v1\" or \"exp-3\" "
        "(letters, digits, _ . -; at most 128)"]
