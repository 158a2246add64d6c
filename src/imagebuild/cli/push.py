"""CLI: `imagebuild push` (the logic lives in ``imagebuild.image.push``)."""

from __future__ import annotations

from pathlib import Path

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, is_terminal, load, print_json

BASE_OPTION = typer.Option(
    None, "--base", metavar="IMAGE", help="Refuse unless the last build was on this base (the "
    "build record knows the base; the flag is not needed).")
TAG_OPTION = typer.Option([], "--tag", metavar="TAG", help="Extra tag to push (repeatable).")
LAYERS_OPTION = typer.Option(
    False, "--layers", help="Also push the intermediate layer images (system, python, node, "
    "sim) so teammates and CI reuse them: `imagebuild build --pull` fetches them.")
COMPRESSION_OPTION = typer.Option(
    None, "--compression", metavar="gzip|zstd|both", help="Layer compression: both also pushes a "
    "zstd variant (tag HASH-zstd, made by skopeo) that hosts with Docker 23+ or containerd unpack "
    "faster; zstd does too and makes it the pods' default, gzip the fallback. [spec: build.compression]")


@app.command()
def push(
    spec_path: Path | None = SPEC_OPTION,
    base: str | None = BASE_OPTION,
    tag: list[str] = TAG_OPTION,
    layers: bool = LAYERS_OPTION,
    compression: str | None = COMPRESSION_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Push the spec's built image and record its digest for `pod create` and `run`.

    Push never builds: it publishes exactly the image the last `imagebuild build` of
    this spec made (its record, .imagebuild/SPEC.build.json), and refuses with one
    line when there is none or the spec or its lock changed since (run `imagebuild
    build`). Tags pushed: the content hash, image.version (or "latest"), the
    git commit of the spec's repository (`-dirty` when tracked files changed) and
    each --tag. The digest (name@sha256:...) is printed and written to
    .imagebuild/SPEC.push.json beside the spec only after every tag is pushed.
    Credentials: those `docker login` stored, or IMAGEBUILD_REGISTRY_USERNAME and
    IMAGEBUILD_REGISTRY_PASSWORD. Transient registry failures are retried (4 tries).
    """
    from imagebuild.engine import connect
    from imagebuild.image import compression as layers_compression
    from imagebuild.image.progress import LiveReporter, PlainReporter
    from imagebuild.image.push import Pusher, push_built
    from imagebuild.image.registry_auth import credentials
    from imagebuild.project import Project, PushSettings

    project = Project(load(spec_path))
    mode = layers_compression.check_mode(compression or project.spec.build.compression)
    if layers_compression.pushes_zstd(mode):
        layers_compression.skopeo()  # one line now, not after the gzip push
    settings = PushSettings.from_flags(project, tag=tag, layers=layers, base=base)  # before credentials
    auth = credentials()
    engine = connect()

    def run(reporter, say):
        pusher = Pusher(engine, auth=auth, reporter=reporter, say=say)
        return push_built(engine, project, settings.tags, layers=settings.layers, pusher=pusher,
                          base=settings.base)

    if is_terminal() and not as_json:
        with LiveReporter([], verb="push") as live:
            result = run(live, lambda line: live.live.console.print(line, markup=False,
                                                                    highlight=False))
    else:
        from imagebuild.cli.progress import quiet
        from imagebuild.image.progress import SilentReporter

        reporter = SilentReporter() if quiet() else PlainReporter(verb="push")
        result = run(reporter, lambda line: typer.echo(line, err=True))
    zstd = layers_compression.publish_variant(project, mode, auth)
    if as_json:
        print_json({**result.to_json(), **({"zstd_image": zstd} if zstd else {})})
        return
    if zstd:
        typer.echo(f"pushed the zstd variant {zstd} (pods use it with --compression zstd)", err=True)
    typer.echo(f"pushed {', '.join(result.tags)} ({result.uploaded} layers uploaded, "
               f"{result.existing} already there)", err=True)
    typer.echo(result.image)
