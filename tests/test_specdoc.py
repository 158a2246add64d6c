"""The README's spec reference is generated from the spec's models and the CLI: it
names every key, and a change to a key's type, bounds, default or flag without
regenerating it fails here."""

from __future__ import annotations

from pathlib import Path

from imagebuild.image import specdoc

README = Path(__file__).parent.parent / "README.md"


def test_every_key_has_a_line_and_no_line_names_a_key_that_is_gone():
    assert {key for key, _ in specdoc.spec_keys()} == set(specdoc.WHAT)


def test_the_readme_reference_is_current():
    text = README.read_text(encoding="utf-8")
    assert specdoc.reference() in text, (
        "README.md's spec reference is stale: run `python -m imagebuild.image.specdoc README.md`")


def test_the_reference_shows_bounds_and_the_flags_that_override_a_key():
    rows = {line.split("|")[1].strip(" `"): line for line in specdoc.reference().splitlines()
            if line.startswith("| `")}
    assert "integer (≥ 1, ≤ 8)" in rows["pod.gpu_count"] and "`pod create --gpu-count`" in rows["pod.gpu_count"]
    assert '"secure" \\| "community"' in rows["pod.cloud"]
    assert "`run --idle-stop`" in rows["pod.idle_stop"]


def test_the_unknown_key_error_points_to_a_section_that_exists(tmp_path):
    import pytest

    from imagebuild.errors import SpecError
    from imagebuild.image.spec import load_spec

    spec = tmp_path / "imagebuild.toml"
    spec.write_text("[pod]\ngpus = 2\n")
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    section = str(error.value).split("README's ")[1].strip('"')
    assert f"#### {section}" in README.read_text(encoding="utf-8"), str(error.value)
