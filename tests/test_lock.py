"""The lock: its file, staleness, what builds render from it, `lock`/`diff`/`--locked`.

The first tests need no network; the ``docker`` ones resolve a real lock (apt inside
the test base, uv against PyPI, the npm registry) and build from edited locks.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CI_SPEC, ca_bundle, run_in_image
from lockdata import pin, sample_lock

from imagebuild.errors import SpecError
from imagebuild.image.lock import LOCK_FILENAME, check_locked, lock_path, parse_lock, read_lock, write_lock
from imagebuild.image.lockdiff import diff_locks, format_changes
from imagebuild.image.render import plan_build
from imagebuild.image.spec import load_spec

SPEC = load_spec(CI_SPEC).spec


def imagebuild(*args: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebuild", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def _project(tmp_path: Path, lock=None) -> Path:
    (tmp_path / "imagebuild.toml").write_text(CI_SPEC.read_text())
    if lock is not None:
        write_lock(tmp_path / LOCK_FILENAME, lock)
    return tmp_path / "imagebuild.toml"


def _tags(lock) -> dict[str, str]:
    return {layer.name: layer.tag for layer in plan_build(SPEC, lock=lock).layers}


def test_lock_file_round_trips_and_reads_as_one_table_per_package(tmp_path):
    lock = sample_lock(SPEC)
    path = write_lock(tmp_path / "research-pod.lock", lock)
    assert path == lock_path(tmp_path / "research-pod.toml")  # a spec's lock: its name, .lock
    text = path.read_text()
    assert read_lock(path).data == lock.data
    assert "[python.packages.wandb]" in text and "[sim.packages.mujoco]" in text
    assert 'htop = "3.2.2-2"' in text  # apt pins: one line each, diff-friendly


def test_stale_lock_names_what_differs():
    lock = sample_lock(SPEC)
    assert lock.stale(SPEC) is None
    changed = SPEC.model_copy(update={"simulators": SPEC.simulators.model_copy(
        update={"packages": ["mujoco"]})})
    assert lock.stale(changed) == 'sim.packages is ["mujoco"] in the spec but ["mujoco", "gymnasium"] ' \
        "in the lock"
    with pytest.raises(SpecError, match=r"the lock is stale: sim\.packages .*run `imagebuild lock`"):
        check_locked(lock, changed, "imagebuild.lock")
    with pytest.raises(SpecError, match="no lock file; run `imagebuild lock`"):
        check_locked(None, SPEC, "imagebuild.lock")


@pytest.mark.parametrize("text, needle", [
    ("not = [toml", "not valid TOML"),
    ("format = 1\nepoch = 1\n", "no [inputs]"),
])
def test_broken_lock_is_one_line(text, needle):
    with pytest.raises(SpecError) as caught:
        parse_lock(text, "imagebuild.lock")
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    assert "imagebuild lock" in str(caught.value)


def test_locked_render_installs_exact_versions_with_hashes():
    lock = sample_lock(SPEC)
    plan = plan_build(SPEC, lock=lock)
    system = plan.layer("system").layer
    assert "htop=3.2.2-2" in system.dockerfile and "ARG SOURCE_DATE_EPOCH=1764460800" in system.dockerfile
    python = plan.layer("python").layer
    assert "--require-hashes" in python.dockerfile and "--seed" not in python.dockerfile
    locked = b"".join(text for path, text in sorted(python.files.items()) if path.startswith("chunks/"))
    assert b"pip==25.3 \\\n    --hash=sha256:abab" in locked and b"wandb==0.23.0" in locked
    node = plan.layer("node").layer.dockerfile
    assert "22.21.1 10.9.4" in node and "sha512-bm9kZQ==" in node and "claude-code@2.1.19" in node
    assert plan.layer("runtime").layer.files[LOCK_FILENAME] == lock.text().encode()


def test_changing_the_lock_changes_the_tags_from_that_layer_on():
    before = _tags(sample_lock(SPEC))
    assert _tags(sample_lock(SPEC)) == before  # deterministic
    python = _tags(sample_lock(SPEC, **{"python.packages.wandb": pin("0.22.0")}))
    assert python["system"] == before["system"]
    assert all(python[name] != before[name] for name in ("python", "node", "sim", "runtime"))
    sim = _tags(sample_lock(SPEC, **{"sim.packages.numpy": pin("2.3.4")}))
    assert [sim[n] == before[n] for n in ("system", "python", "node", "sim")] == [True] * 3 + [False]
    apt = _tags(sample_lock(SPEC, **{"system.apt.htop": "3.2.2-1"}))
    assert apt["system"] != before["system"]
    assert _tags(sample_lock(SPEC, epoch=1)) != before  # the epoch is in every layer


def test_a_registry_base_is_built_from_its_locked_digest():
    digest = "nvidia/cuda@sha256:" + "1" * 64
    lock = sample_lock(SPEC, **{"base.digest": digest})
    assert plan_build(SPEC, lock=lock).layer("system").layer.dockerfile.count(f"FROM {digest}\n") == 1


def test_diff_lists_changes_per_layer():
    old = sample_lock(SPEC)
    new = sample_lock(SPEC, **{"system.apt.htop": "3.3.0-1", "sim.packages.glfw": pin("2.9.0"),
                               "python.packages.wandb": pin("0.24.0")})
    del new.data["sim"]["packages"]["numpy"]
    lines = format_changes(diff_locks(old, new))
    assert lines == ["system  ~ htop 3.2.2-2 -> 3.3.0-1", "python  ~ wandb 0.23.0 -> 0.24.0",
                     "sim     + glfw 2.9.0", "sim     - numpy 2.3.5"]
    assert format_changes(diff_locks(old, old)) == ["no changes"]


def test_lock_check_cli_exit_codes(tmp_path):
    spec = _project(tmp_path)
    missing = imagebuild("lock", "--check", "--spec", str(spec))
    assert missing.returncode == 1 and "no lock" in missing.stderr
    write_lock(tmp_path / LOCK_FILENAME, sample_lock(SPEC))
    ok = imagebuild("lock", "--check", "--spec", str(spec))
    assert ok.returncode == 0, ok.stderr
    spec.write_text(spec.read_text().replace('"htop"', '"htop", "jq"'))
    stale = imagebuild("lock", "--check", "--spec", str(spec))
    assert stale.returncode == 1
    assert stale.stderr.count("\n") == 1 and "system.packages" in stale.stderr and '"jq"' in stale.stderr


def test_build_locked_refuses_a_missing_or_stale_lock(tmp_path):
    spec = _project(tmp_path)
    missing = imagebuild("build", "--locked", "--spec", str(spec))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no lock file; run `imagebuild lock`" in missing.stderr
    assert not (tmp_path / LOCK_FILENAME).exists()  # --locked never writes the lock (CI)
    write_lock(tmp_path / LOCK_FILENAME, sample_lock(SPEC, **{"inputs.node.claude_code": "2.0.0"}))
    stale = imagebuild("build", "--locked", "--spec", str(spec))
    assert stale.returncode == 2 and stale.stderr.count("\n") == 1, stale.stderr
    assert 'node.claude_code is "latest" in the spec but "2.0.0" in the lock' in stale.stderr
    assert "2.0.0" in (tmp_path / LOCK_FILENAME).read_text()  # nor rewrites a stale one
    assert not (tmp_path / ".imagebuild").exists()  # and nothing is recorded


def test_diff_cli_between_two_lock_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_lock(tmp_path / "a" / LOCK_FILENAME, sample_lock(SPEC))
    write_lock(tmp_path / "b" / LOCK_FILENAME, sample_lock(SPEC, **{"node.claude-code.version": "2.1.20"}))
    done = imagebuild("diff", str(tmp_path / "a"), str(tmp_path / "b" / LOCK_FILENAME))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node    ~ @anthropic-ai/claude-code 2.1.19 -> 2.1.20\n"


# --- real resolution and builds -------------------------------------------------------------

@pytest.fixture(scope="module")
def locked_project(tmp_path_factory, test_base) -> Path:
    """The test spec with a lock `imagebuild lock` resolved for real."""
    folder = tmp_path_factory.mktemp("locked")
    spec = _project(folder)
    args = ["lock", "--spec", str(spec)] + (["--ca-cert", str(ca_bundle())] if ca_bundle() else [])
    done = imagebuild(*args)
    assert done.returncode == 0, done.stderr
    for section in ("base", "system", "python", "node", "sim"):  # each wait is said as it starts
        assert f"imagebuild: resolving {section} (" in done.stderr, done.stderr
    return folder


@pytest.mark.docker
def test_lock_resolves_everything_the_spec_leaves_open(locked_project):
    lock = read_lock(locked_project / LOCK_FILENAME)
    assert lock.base["id"].startswith("sha256:")
    assert re.fullmatch(r"[\w.+~:-]+", lock.apt["htop"]) and "mesa-vulkan-drivers" in lock.apt
    assert "libc6-dev" in lock.apt  # the closure, not only the names the spec lists
    assert re.fullmatch(r"3\.11\.\d+", lock.interpreter)
    assert lock.data["python"]["uv"]["version"] == SPEC.python.uv
    for layer, name in (("python", "wandb"), ("python", "pip"), ("sim", "mujoco"), ("sim", "numpy")):
        assert lock.packages(layer)[name]["hashes"][0].startswith("sha256:"), (layer, name)
    assert "wandb" not in lock.packages("sim")  # the sim layer holds only what it adds
    assert {key: pin["integrity"][:7] for key, pin in lock.node.items()} == {
        "node": "sha512-", "npm": "sha512-", "claude-code": "sha512-", "claude-code-platform": "sha512-"}
    spec = str(locked_project / "imagebuild.toml")
    assert imagebuild("lock", "--check", "--spec", spec).returncode == 0
    again = imagebuild("lock", "--spec", spec)  # nothing changed: the file is left alone
    assert again.returncode == 0 and "up to date" in again.stdout, again.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_a_lock_pinned_to_an_older_package_installs_it(engine, locked_project, ci_spec, tmp_path):
    """An older idna than the newest (which the fresh lock holds) is what the image gets;
    `diff` shows the change between the lock and the image built from the other."""
    from imagebuild.image.builder import Builder
    from imagebuild.image.resolve import _Resolver

    lock = read_lock(locked_project / LOCK_FILENAME)
    newest = lock.packages("python")["idna"]["version"]
    older = _Resolver(ci_spec, engine, ca_bundle(), set())._compile(
        ["idna==3.6"], lock.interpreter, None, {})["idna"]
    assert older["version"] == "3.6" != newest
    lock.data["python"]["packages"]["idna"] = older
    builder = Builder(engine)
    result = builder.build(ci_spec, ca_cert=ca_bundle(), lock=lock, up_to="python")
    done = run_in_image(result.image, "python -c 'import idna; print(idna.__version__)'")
    assert done.returncode == 0 and done.stdout.strip() == "3.6", done.stderr
    write_lock(tmp_path / LOCK_FILENAME, lock)
    changes = imagebuild("diff", str(locked_project), str(tmp_path), "--json")
    assert json.loads(changes.stdout) == [
        {"layer": "python", "name": "idna", "old": newest, "new": "3.6", "kind": "changed"}]


@pytest.mark.docker
def test_an_apt_version_the_mirror_lacks_is_one_line(engine, locked_project, ci_spec):
    from imagebuild.errors import UserError
    from imagebuild.image.builder import Builder

    lock = read_lock(locked_project / LOCK_FILENAME)
    lock.data["system"]["apt"]["htop"] = "3.2.2-0imagebuild1"
    with pytest.raises(UserError) as caught:
        Builder(engine).build(ci_spec, ca_cert=ca_bundle(), lock=lock, up_to="system")
    message = str(caught.value)
    assert message == ("the lock pins htop=3.2.2-0imagebuild1, which the apt mirror no longer has; "
                       "refresh it with `imagebuild lock --upgrade system`")


@pytest.mark.docker
def test_lock_upgrade_of_one_package_keeps_the_rest(locked_project, tmp_path):
    for name in ("imagebuild.toml", LOCK_FILENAME):
        (tmp_path / name).write_text((locked_project / name).read_text())
    lock = read_lock(tmp_path / LOCK_FILENAME)
    lock.data["python"]["packages"]["idna"]["version"] = "3.6"  # as if locked a while ago
    lock.data["system"]["apt"]["htop"] = "3.2.2-0old"
    write_lock(tmp_path / LOCK_FILENAME, lock)
    args = ["lock", "--upgrade", "idna", "--spec", str(tmp_path / "imagebuild.toml")]
    done = imagebuild(*args, *(["--ca-cert", str(ca_bundle())] if ca_bundle() else []))
    assert done.returncode == 0, done.stderr
    upgraded, fresh = read_lock(tmp_path / LOCK_FILENAME), read_lock(locked_project / LOCK_FILENAME)
    assert upgraded.packages("python")["idna"] == fresh.packages("python")["idna"]
    assert upgraded.packages("sim") == fresh.packages("sim")  # resolved again on the new pins: same
    assert upgraded.apt["htop"] == "3.2.2-0old"  # another section: untouched
    assert "python  ~ idna 3.6 -> " in done.stdout
    typo = imagebuild("lock", "--upgrade", "idan", "--spec", str(tmp_path / "imagebuild.toml"))
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1
    assert "lock --upgrade idan: not a section" in typo.stderr


@pytest.mark.docker
def test_diff_reads_the_lock_baked_into_a_built_image(built, tmp_path):
    from imagebuild.image.lock import Lock

    lock = Lock(json.loads(json.dumps(built.plan.lock.data)))
    was = lock.packages("sim")["numpy"]["version"]
    lock.data["sim"]["packages"]["numpy"]["version"] = "1.0.0"
    write_lock(tmp_path / LOCK_FILENAME, lock)
    done = imagebuild("diff", built.image, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sim     ~ numpy {was} -> 1.0.0\n"
    gone = imagebuild("diff", str(tmp_path), "imagebuild-test/no-such:image")
    assert gone.returncode == 2 and gone.stderr.count("\n") == 1
    assert "neither a file nor a local image" in gone.stderr
