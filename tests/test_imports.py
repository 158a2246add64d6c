"""No import cycle in src/imagebuild: every ``import`` counts, the lazy ones inside
functions too (a lazy import only hides a circle until the function runs).

The graph is read with ``ast`` (nothing is imported); the planted package proves the
check finds a circle of lazy imports across modules and names it."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# The image side: stdlib scripts installed into the image, not modules of the package.
NOT_MODULES = {"entrypoint"}


def module_names(root: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in (root / package).rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if NOT_MODULES & set(parts):
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its code."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import module` names the module, `from module import name` the module.
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                           else node.module for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return error.args[1]
    return None


def test_src_imagebuild_has_no_import_cycle():
    graph = import_graph(SRC, "imagebuild")
    assert len(graph) > 50 and graph["imagebuild.image.push"]  # it read the real package
    cycle = first_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_planted_cycle_of_lazy_imports_is_found(tmp_path):
    package = tmp_path / "planted"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from planted.sub import b\n")
    (package / "sub" / "b.py").write_text("def later():\n    from planted.c import thing\n")
    (package / "c.py").write_text("import os\n\n\ndef thing():\n    import planted.a\n")
    cycle = first_cycle(import_graph(tmp_path, "planted"))
    assert cycle is not None and set(cycle) == {"planted.a", "planted.sub.b", "planted.c"}
    (package / "c.py").write_text("import os\n")  # the circle broken: none found
    assert first_cycle(import_graph(tmp_path, "planted")) is None
