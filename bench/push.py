"""Push benchmark: first push of the test pod image to an empty registry, then the
same image again unchanged — one table, one run.

    .venv/bin/python bench/push.py [--spec tests/specs/ci.toml] [--base IMAGE]
                                   [--ca-cert FILE]

A fresh local registry (Debian's docker-registry, htpasswd auth, tests/registry.py)
takes the pushes. "Pushed" and "Layer already exists" are the engine's per-layer
statuses summed over every tag pushed; "registry +bytes" is what the registry's
storage grew by (compressed blobs actually uploaded). Target: the unchanged push
uploads 0 layers and adds no blob.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from _common import build_parser  # noqa: E402
from registry import Registry, remove_repository_tags  # noqa: E402

from imagebuild.engine import connect  # noqa: E402
from imagebuild.image.push import Pusher, PushResult, push_built  # noqa: E402
from imagebuild.image.spec import load_spec  # noqa: E402
from imagebuild.project import Project  # noqa: E402


def spec_for(registry: Registry, spec: Path, base: str, folder: Path) -> Path:
    text = re.sub(r"(?m)^name = .*$", f'name = "{registry.host}/imagebuild-bench/pod"',
                  spec.read_text())
    text = re.sub(r"(?m)^base = .*$", f'base = "{base}"', text)
    target = folder / "imagebuild.toml"
    target.write_text(text)
    return target


def counts(result: PushResult) -> tuple[int, int]:
    pushed = sum(len(p.uploaded) for p in result.pushes)
    return pushed, sum(len(p.existing) for p in result.pushes)


def size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count} B"


def main() -> None:
    parser = build_parser(__doc__)
    args = parser.parse_args()

    engine = connect()
    rows = []
    with Registry() as registry, tempfile.TemporaryDirectory(prefix="bench-push-") as scratch:
        spec_file = spec_for(registry, args.spec, args.base, Path(scratch))
        project = Project(load_spec(spec_file))
        spec = project.spec
        print(f"building {spec.image.name} (BuildKit cache makes this quick after a first "
              "build)...", file=sys.stderr)
        build = [sys.executable, "-m", "imagebuild", "build", "--spec", str(spec_file)]
        built = subprocess.run(build + (["--ca-cert", str(args.ca_cert)] if args.ca_cert else []),
                               capture_output=True, text=True)
        if built.returncode != 0:
            sys.exit(f"build failed: {built.stderr.strip()[-2000:]}")
        image = project.built().image  # the build record push reads
        auth = {"username": registry.username, "password": registry.password}
        layers = len(engine.client.images.get(image).attrs["RootFS"]["Layers"])
        for label in ("first push (empty registry)", "second push, unchanged"):
            stored = registry.stored_bytes()
            started = time.perf_counter()
            result = push_built(engine, project, pusher=Pusher(engine, auth=auth))
            seconds = time.perf_counter() - started
            pushed, existing = counts(result)
            rows.append((label, seconds, len(result.tags), pushed, existing,
                         registry.stored_bytes() - stored, result.streamed_bytes))
        # As a user runs it: the CLI's wall time for the unchanged push (Python start included).
        env = {**os.environ, "IMAGEBUILD_REGISTRY_USERNAME": registry.username,
               "IMAGEBUILD_REGISTRY_PASSWORD": registry.password}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "imagebuild", "push", "--spec",
                               str(spec_file)], capture_output=True, text=True, env=env)
        cli_seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"CLI push failed: {done.stderr.strip()}")
        cli_uploaded = re.search(r"\((\d+) layers uploaded", done.stderr)
        remove_repository_tags(engine, spec.image.name)  # this run's port only

    print(f"image: {image} ({layers} filesystem layers)")
    header = ("push", "seconds", "tags", '"Pushed"', '"already exists"', "registry +bytes",
              "engine bytes read")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, seconds, tags, pushed, existing, added, streamed in rows:
        print(f"| {label} | {seconds:.1f} | {tags} | {pushed} | {existing} | "
              f"{size(added)} | {size(streamed)} |")
    print(f"| CLI `imagebuild push`, unchanged | {cli_seconds:.1f} | - | "
          f"{cli_uploaded.group(1) if cli_uploaded else '?'} | - | - | - |")
    second_pushed = rows[1][3]
    print(f"\nunchanged push uploaded {second_pushed} layers (target 0): "
          f"{'OK' if second_pushed == 0 else 'MISSED'}")


if __name__ == "__main__":
    main()
