"""CLI: `imagebuild render` and `imagebuild build`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, is_terminal, load, output_folder, print_json

BASE_OPTION = typer.Option(None, "--base", help="Base image instead of the spec's image.base.")
CACHE_TO_OPTION = typer.Option(
    None, "--cache-to", metavar="REPO", help="Export each built layer's BuildKit cache to the "
    "registry as REPO:buildcache-<layer> (type=registry, mode=max). Needs docker buildx with a "
    "builder that exports cache and sees local images: the docker driver on an engine with "
    "the containerd image store (each layer is built FROM the previous one locally).")
CACHE_FROM_OPTION = typer.Option(
    None, "--cache-from", metavar="REPO", help="Reuse the registry cache REPO:buildcache-<layer> "
    "written by --cache-to (CI machines start warm). Needs docker buildx.")


PHYSX_GPU_OPTION = typer.Option(
    None, "--physx-gpu", metavar="ZIP", dir_okay=False, help="SAPIEN's PhysX GPU library "
    "(linux-so.zip of github.com/sapien-sim/physx-precompiled) to bake into the image; wins "
    "over the spec's simulators.physx_gpu.")


@app.command()
def render(
    spec_path: Path | None = SPEC_OPTION,
    base: str | None = BASE_OPTION,
    out: Path = typer.Option(Path("out/dockerfiles"), "--out", help="Folder to write into."),
    physx_gpu: Path | None = PHYSX_GPU_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write each layer's Dockerfile and the plan (order, tags) without building.

    With an up-to-date lock beside the spec and the engine at hand, the tags are the ones
    `imagebuild build` makes; otherwise each is marked "may differ" and a note says why."""
    from imagebuild.engine import connect
    from imagebuild.errors import UserError
    from imagebuild.image.builder import plan_preview
    from imagebuild.image.render import write_plan
    from imagebuild.project import Project

    output_folder(out)
    project = Project(load(spec_path))
    spec = project.spec_for(base, physx_gpu)
    try:
        engine = connect()
    except UserError:  # render needs no engine; the tags then say what they cannot know
        engine = None
    plan, unknown = plan_preview(spec, project.read_lock(), engine)
    write_plan(plan, out)
    if as_json:
        print_json({**plan.to_json(), "tags_final": unknown is None, "tags_unknown_because": unknown})
        return
    for index, layer in enumerate(plan.layers, start=1):
        typer.echo(f"{index}. {layer.name:8} {layer.image}{'' if unknown is None else ' (may differ)'}")
    if unknown:
        typer.echo(f"note: these may not be the tags `imagebuild build` makes: {unknown}", err=True)
    typer.echo(f"wrote {out}/")


@app.command()
def build(
    spec_path: Path | None = SPEC_OPTION,
    base: str | None = BASE_OPTION,
    ca_cert: Path | None = typer.Option(
        None, "--ca-cert", help="CA bundle for TLS-intercepting proxies, given to the build as a "
        "secret (never stored in the image); default: the host's (SSL_CERT_FILE, ...; see the "
        "README); none: no bundle.", envvar="IMAGEBUILD_CA_CERT"),
    secret: list[str] = typer.Option(
        [], "--secret", help="Build secret ID=env:VAR or ID=file:PATH (repeatable)."),
    layer: str | None = typer.Option(None, "--layer", help="Build only up to this layer."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild every layer."),
    pull: bool = typer.Option(
        False, "--pull", help="Before building a missing layer, pull it by its content tag "
        "from the image's registry (pushed there by `imagebuild push --layers`)."),
    cache_to: str | None = CACHE_TO_OPTION,
    cache_from: str | None = CACHE_FROM_OPTION,
    physx_gpu: Path | None = PHYSX_GPU_OPTION,
    locked: bool = typer.Option(
        False, "--locked", help="Refuse to build unless the spec's lock (imagebuild.lock "
        "beside imagebuild.toml) exists and matches the spec (CI: never write the lock)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Build the image's layers in order with BuildKit (unchanged layers are reused).

    The build installs exactly what the lock beside the spec (SPEC.lock) pins. The first
    build writes that lock, and a build after a spec change updates it (and says so);
    `--locked` refuses both. The build is recorded in .imagebuild/SPEC.build.json for
    `push`, `run` and `pod create`."""
    from imagebuild.cli.progress import quiet
    from imagebuild.engine import connect
    from imagebuild.image.layers import inventory, table
    from imagebuild.image.progress import LiveReporter, PlainReporter
    from imagebuild.image.render import LAYER_NAMES
    from imagebuild.project import BuildSettings, Project

    project = Project(load(spec_path))
    settings = BuildSettings.from_flags(
        project, base=base, physx_gpu=physx_gpu, ca_cert=ca_cert, secret=secret, layer=layer,
        no_cache=no_cache, pull=pull, cache_from=cache_from, cache_to=cache_to, locked=locked)
    engine = connect()
    if quiet():  # the CA line is progress: --quiet leaves it out
        settings = dataclasses.replace(settings, ca_note=None)

    if is_terminal() and not as_json:
        with LiveReporter(list(LAYER_NAMES)) as live:
            result, previous = project.build(settings, engine, live, say=lambda line: live.live.console.print(
                line, markup=False, highlight=False))
    else:
        result, previous = project.build(settings, engine, PlainReporter(),
                                         say=lambda line: typer.echo(line, err=True))
    physx = result.physx_gpu(engine)
    sizes = inventory(engine, result.image, previous)
    if as_json:
        print_json({**result.to_json(), "physx_gpu": physx,
                    "sizes": [layer.to_json() for layer in sizes]})
    else:
        if physx:
            typer.echo(f"PhysX GPU library: {physx}", err=True)
        for line in table(sizes):
            typer.echo(line, err=True)
        typer.echo(result.image)
