"""The host-image contract is spelled once: in imagebuild/contract.py, handed to the
image as contract.env (sourced by bash, parsed by pod-save). Also the code-shape
rules of the project: no Python function over 80 lines in src/, and every test in
tests/ checks something (an assert, pytest.raises/fail, or a helper that asserts)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imagebuild import contract
from imagebuild.image import render
from imagebuild.image.spec import Spec

SRC = Path(__file__).resolve().parents[1] / "src" / "imagebuild"
# Paths and labels (the status words "ready", "starting" are ordinary English elsewhere).
CONTRACT_VALUES = sorted({v for v in contract.SHELL_NAMES.values() if isinstance(v, str) and "/" in v}
                         | {contract.LABEL_CUDA, contract.LABEL_LAYER, contract.LABEL_VERSIONS,
                            contract.ENTRYPOINT_DIR})
MAX_FUNCTION_LINES = 80


def _python_files() -> list[Path]:
    return sorted(path for path in SRC.rglob("*.py") if "__pycache__" not in path.parts)


def _string_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@pytest.mark.parametrize("value", CONTRACT_VALUES)
def test_each_contract_name_is_spelled_in_one_python_module(value):
    spelled = [path.relative_to(SRC).as_posix() for path in _python_files()
               if value in _string_literals(path)]
    assert spelled == ["contract.py"], f"{value!r} is spelled in {spelled}: import imagebuild.contract"


def test_the_grep_finds_a_copied_literal(tmp_path):
    # The check above is only worth something if a copy is seen: plant one.
    copy = tmp_path / "copy.py"
    copy.write_text(f'READY = "{contract.READY_MARKER}"\n')
    assert contract.READY_MARKER in _string_literals(copy)


def _code_literals(path: Path) -> set[str]:
    """String literals that are not docstrings (prose may name a path)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings}


def _embeds(text: str, value: str) -> bool:
    return re.search(re.escape(value) + r"(?![\w.-])", text) is not None


# Host code may name /workspace itself in help texts; deeper contract paths come from contract.
EMBEDDED = [value for value in CONTRACT_VALUES if value != contract.WORKSPACE and "/" in value]


@pytest.mark.parametrize("value", EMBEDDED)
def test_host_code_builds_longer_paths_from_the_contract(value):
    # A shell line like "mkdir -p /workspace/.pod" copies the name as surely as a constant.
    host = [path for path in _python_files() if "entrypoint" not in path.relative_to(SRC).parts]
    spelled = [path.relative_to(SRC).as_posix() for path in host if path.name != "contract.py"
               and any(_embeds(literal, value) for literal in _code_literals(path))]
    assert spelled == [], f"{value!r} is written inside a string in {spelled}: use imagebuild.contract"


def test_the_embedded_check_sees_a_copy_in_a_shell_line(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text(f'"""Saves into {contract.POD_DIR}."""\nLINE = "mkdir -p {contract.POD_DIR} && true"\n')
    literals = _code_literals(copy)
    assert any(_embeds(literal, contract.POD_DIR) for literal in literals)
    assert not any(literal.startswith("Saves") for literal in literals)  # the docstring is prose
    assert not _embeds(f"{contract.POD_DIR}-old", contract.POD_DIR)


def test_build_steps_take_the_versions_folder_from_the_contract():
    shell = render.render_layer("system", "base", Spec()).files["build-env.sh"].decode()
    assert shell.startswith(contract.build_env_file())  # the names first, then the library using them
    library = shell[len(contract.build_env_file()):]
    assert contract.VERSIONS_DIR not in library and '"$POD_VERSIONS_DIR' in library
    # build.env carries every contract name the build steps use, and only those.
    used = set(re.findall(r"\$\{?(POD_[A-Z_]+)", library))
    assert used == set(contract.BUILD_NAMES), used


def test_contract_env_is_in_the_runtime_context_and_sourced_as_written(tmp_path):
    files = render._entrypoint_files()
    layer_files = {**files, f"entrypoint/{contract.ENV_FILE}": contract.env_file().encode()}
    assert f"entrypoint/{contract.ENV_FILE}" not in files  # rendered, never a copy in the tree
    env = tmp_path / contract.ENV_FILE
    env.write_bytes(layer_files[f"entrypoint/{contract.ENV_FILE}"])
    names = list(contract.SHELL_NAMES)
    script = f'. "{env}"; ' + "; ".join(f'printf "%s\\n" "${name}"' for name in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [str(contract.SHELL_NAMES[name]) for name in names]


def test_pod_save_reads_the_same_names(tmp_path):
    env = tmp_path / contract.ENV_FILE
    env.write_text(contract.env_file())
    sys.path.insert(0, str(SRC / "entrypoint" / "lib"))
    try:
        from podsave import contract as image_side
    finally:
        sys.path.pop(0)
    read = image_side.names.__wrapped__(str(env))
    assert read == {name: str(value) for name, value in contract.SHELL_NAMES.items()}
    assert image_side.names.__wrapped__(str(tmp_path / "missing")) == {}


def _image_code(path: Path) -> list[str]:
    """What an image file runs: a Python file's (or python script's) non-docstring
    literals, a shell file's lines without comments."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py" or text.startswith("#!/usr/bin/env python"):
        return sorted(_code_literals(path))
    return [line.split(" #", 1)[0] for line in text.splitlines() if not line.lstrip().startswith("#")]


def _image_files() -> list[Path]:
    return sorted(path for path in (SRC / "entrypoint").rglob("*") if path.is_file()
                  and "__pycache__" not in path.parts and path.suffix != ".md")


# Where contract.env itself lies is how the image's scripts find it: the one name they spell.
IMAGE_EMBEDDED = [value for value in EMBEDDED if value != contract.ENTRYPOINT_DIR]


@pytest.mark.parametrize("value", IMAGE_EMBEDDED)
def test_image_scripts_take_the_names_from_contract_env(value):
    assert f"{contract.ENV_FILE}" in (SRC / "entrypoint" / "bin" / "pod-entrypoint").read_text()
    spelled = [path.relative_to(SRC).as_posix() for path in _image_files()
               if any(_embeds(code, value) for code in _image_code(path))]
    assert spelled == [], f"{value!r} is written in {spelled}: read it from contract.env"


def test_the_image_check_sees_a_copy_in_a_script_and_not_in_a_comment(tmp_path):
    script = tmp_path / "pod-thing"
    script.write_text(f"#!/bin/bash\n# keeps {contract.BASHRC_POD}\n. {contract.BASHRC_POD}\n")
    assert [code for code in _image_code(script) if _embeds(code, contract.BASHRC_POD)] == [
        f". {contract.BASHRC_POD}"]
    tool = tmp_path / "pod-tool"
    tool.write_text(f'#!/usr/bin/env python3\n"""Reads {contract.SAVE_CONFIG}."""\nP = "{contract.SAVE_CONFIG}"\n')
    assert _image_code(tool) == [contract.SAVE_CONFIG]


def _long_functions(path: Path, root: Path = SRC) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(root)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_no_python_function_in_src_is_over_80_lines():
    too_long = [found for path in _python_files() for found in _long_functions(path)]
    assert too_long == []


def test_the_length_check_sees_a_long_function(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    assert [found.split()[-3] for found in _long_functions(long, root=tmp_path)] == ["f"]


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module imported, the function it is imported in, "" at module level)."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
            elif isinstance(child, ast.ImportFrom) and child.module:
                found.append((child.module, function))
            elif isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            else:
                visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_pods_reach_runpod_only_through_resolve():
    # runpod may import pods (RunPodTarget is a Target); the other way only lazily, in resolve().
    reaching = sorted((path.name, module, function) for path in (SRC / "pods").glob("*.py")
                      for module, function in _imports(path) if module.startswith("imagebuild.runpod"))
    assert reaching == [("targets.py", "imagebuild.runpod.target", "resolve")]


TESTS = Path(__file__).resolve().parent
# Calls that check by themselves (pytest's); helpers that assert are found in tests/.
CHECKING_CALLS = {"raises", "fail", "warns", "deprecated_call"}


def _function_defs(paths: list[Path]) -> list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    return [(path, node) for path in paths for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def _called(node: ast.AST) -> set[str]:
    return {call.func.id if isinstance(call.func, ast.Name) else call.func.attr
            for call in ast.walk(node)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name | ast.Attribute)}


def _checks(node: ast.AST, checkers: set[str]) -> bool:
    return any(isinstance(child, ast.Assert) for child in ast.walk(node)) or bool(_called(node) & checkers)


def _tests_without_a_check(paths: list[Path]) -> list[str]:
    """test_* functions with no assert, no pytest.raises/fail and no call to a function
    of tests/ that checks (by name, to a fixed point: a helper calling a checking helper)."""
    defs = _function_defs(paths)
    checkers = set(CHECKING_CALLS)
    while True:
        more = {node.name for _, node in defs if node.name not in checkers and _checks(node, checkers)}
        if not more:
            break
        checkers |= more
    return [f"{path.name}:{node.lineno} {node.name}" for path, node in defs
            if node.name.startswith("test_") and not _checks(node, checkers)]


def _test_files() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if "__pycache__" not in path.parts)


def test_every_test_checks_something():
    assert _tests_without_a_check(_test_files()) == []


def test_the_check_scan_sees_a_test_that_checks_nothing(tmp_path):
    planted = tmp_path / "test_planted.py"
    planted.write_text("def helper(x):\n    assert x\n\n\ndef nested(x):\n    helper(x)\n\n\n"
                       "def test_checks_through_a_helper():\n    nested(1)\n\n\n"
                       "def test_raises():\n    with pytest.raises(ValueError):\n        int('x')\n\n\n"
                       "def test_nothing():\n    print('ran')\n")
    assert _tests_without_a_check([planted]) == ["test_planted.py:18 test_nothing"]


def test_the_standalone_pod_helper_spells_the_contract_as_it_is():
    # tests/image/pod.py may not import imagebuild (the image suite runs alone): its copies must agree.
    from image import pod

    assert pod.READY_FILE == contract.READY_MARKER
    assert f"{contract.LOG_DIR}/entrypoint.log" == pod.ENTRYPOINT_LOG
    assert "$1/entrypoint.log" in (SRC / "entrypoint" / "lib" / "log.sh").read_text()  # log_open DIR
