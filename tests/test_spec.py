"""The spec: defaults, loading, and one-line validation errors through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from imagebuild.errors import SpecError
from imagebuild.image.spec import DEFAULT_BASE, Spec, load_spec


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebuild", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_default_spec_reproduces_the_research_pod(tmp_path):
    loaded = load_spec(cwd=tmp_path)
    spec = loaded.spec
    assert loaded.path is None
    assert spec.image.base == DEFAULT_BASE
    assert spec.cuda_version == "12.8"
    assert spec.torch_backend == "cu128"
    assert {"mujoco", "gymnasium", "stable-baselines3"} <= {
        p.split("=")[0] for p in spec.simulators.packages}
    assert any(p.startswith("mani-skill") for p in spec.simulators.packages)
    assert "wandb" in spec.python.packages
    assert spec.node.claude_code == "latest"
    assert spec.pod.gpu == "4090"


def test_spec_in_current_directory_is_found(tmp_path):
    (tmp_path / "imagebuild.toml").write_text('[image]\nname = "reg.example/me/pod"\n')
    loaded = load_spec(cwd=tmp_path)
    assert loaded.spec.image.name == "reg.example/me/pod"
    assert loaded.directory == tmp_path


@pytest.mark.parametrize(
    "toml, expected",
    [
        ('[node]\nversion = "twenty"\n',
         'imagebuild.toml: node.version: expected a major version like "22", got "twenty"'),
        ('[node]\nversoin = "22"\n', "imagebuild.toml: node.versoin: unknown key"),
        ('[python]\nsource = "conda"\n', "imagebuild.toml: python.source: expected 'uv' or 'system', got \"conda\""),
        ("[system]\npackages = \"htop\"\n", "imagebuild.toml: system.packages: expected a list, got \"htop\""),
        ('[system]\npackages = ["htop; rm -rf /"]\n', "imagebuild.toml: system.packages: expected apt package names"),
        ('[simulators]\npackages = ["mujoco $(id)"]\n', "imagebuild.toml: simulators.packages: expected pip requirements"),
        ('[node]\nclaude_code = "newest"\n', 'imagebuild.toml: node.claude_code: expected a version like "2.1.19", "latest" or false'),
        ("[pod]\ngpu_count = 0\n", "imagebuild.toml: pod.gpu_count: input should be greater than or equal to 1"),
        # RunPod's volume floor is the spec's bound: the spec key is named, never --volume-gb.
        ("[pod]\nvolume_gb = 5\n", "imagebuild.toml: pod.volume_gb: input should be greater than or equal to 10"),
        ('[pod]\nports = ["22"]\n', 'imagebuild.toml: pod.ports: expected ports like "22/tcp"'),
        ('[image]\nname = "ghcr.io/you/pod:v1"\n', "imagebuild.toml: image.name: expected a repository"),
        ("[image\n", "imagebuild.toml: not valid TOML"),
        ('[extras]\nx = 1\n', "imagebuild.toml: extras: unknown key"),
    ],
)
def test_bad_spec_is_one_line_exit_2(tmp_path, toml, expected):
    (tmp_path / "imagebuild.toml").write_text(toml)
    done = cli("render", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]


def test_missing_spec_file_names_the_flag(tmp_path):
    done = cli("render", "--spec", "nope.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "imagebuild: error: nope.toml: no such spec file; pass an existing file to --spec"


def test_claude_code_can_be_disabled_or_pinned():
    assert Spec.model_validate({"node": {"claude_code": False}}).node.claude_code is False
    assert Spec.model_validate({"node": {"claude_code": "2.1.19"}}).node.claude_code == "2.1.19"


def test_with_base_revalidates():
    assert Spec().with_base("my/base:1").image.base == "my/base:1"
    with pytest.raises(SpecError, match=r"^--base: image.base: expected an image reference"):
        Spec().with_base("Not An Image!")


def test_pod_section_does_not_change_the_image_hash():
    a = Spec.model_validate({"pod": {"gpu": "a6000"}})
    assert a.digest() == Spec().digest()
    assert Spec.model_validate({"system": {"packages": ["htop"]}}).digest() != Spec().digest()


def test_cuda_and_torch_backend_follow_the_base():
    assert Spec.model_validate({"image": {"base": "nvidia/cuda:12.6.3-runtime-ubuntu22.04"}}).torch_backend == "cu126"
    debian = Spec.model_validate({"image": {"base": "debian:bookworm"}})
    assert debian.cuda_version is None and debian.torch_backend is None
    assert Spec.model_validate({"simulators": {"torch_backend": "cpu"}}).torch_backend == "cpu"


@pytest.mark.parametrize(("section", "values"), [
    ("image", {"version": "v1\n"}),
    ("pod", {"ports": ["22/tcp\n"]}),
    ("pod", {"env": {"HF_HOME\n": "/workspace/hf"}}),
    ("build", {"secrets": ["UV_INDEX_URL\n"]}),
])
def test_a_trailing_newline_is_not_a_valid_name(section, values):
    # `$` matches before a final newline: the shared patterns end in \Z.
    with pytest.raises(ValidationError):
        Spec.model_validate({section: values})


def test_flags_reuse_the_same_strict_patterns():
    from imagebuild.image.push import image_tags
    from imagebuild.pods.podenv import parse_env_flags

    with pytest.raises(SpecError, match="--env"):
        parse_env_flags(["HF_HOME\n=x"])
    with pytest.raises(SpecError, match="--tag"):
        image_tags(None, Path("."), ["v1\n"])
