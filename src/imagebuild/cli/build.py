"""CLI: `imagebuild render` and `imagebuild build`."""

from __future__ import annotations

from pathlib import Path

import typer

from imagebuild.cli import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, is_terminal, load, print_json

BASE_OPTION = typer.Option(None, "--base", help="Base image instead of the spec's image.base.")
CACHE_TO_OPTION = typer.Option(
    None, "--cache-to", metavar="REPO", help="Export each built layer's BuildKit cache to the "
    "registry as REPO:buildcache-<layer> (type=registry, mode=max). Needs docker buildx with a "
    "builder that exports cache (docker-container driver).")
CACHE_FROM_OPTION = typer.Option(
    None, "--cache-from", metavar="REPO", help="Reuse the registry cache REPO:buildcache-<layer> "
    "written by --cache-to (CI machines start warm). Needs docker buildx.")


def _spec(spec_path: Path | None, base: str | None):
    loaded = load(spec_path)
    return loaded.spec.with_base(base) if base else loaded.spec


@app.command()
def render(
    spec_path: Path | None = SPEC_OPTION,
    base: str | None = BASE_OPTION,
    out: Path = typer.Option(Path("out/dockerfiles"), "--out", help="Folder to write into."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write each layer's Dockerfile and the plan (order, tags) without building."""
    from imagebuild.render import plan_build, write_plan

    plan = plan_build(_spec(spec_path, base))
    write_plan(plan, out)
    if as_json:
        print_json(plan.to_json())
        return
    for index, layer in enumerate(plan.layers, start=1):
        typer.echo(f"{index}. {layer.name:8} {layer.image}")
    typer.echo(f"wrote {out}/")


@app.command()
def build(
    spec_path: Path | None = SPEC_OPTION,
    base: str | None = BASE_OPTION,
    ca_cert: Path | None = typer.Option(
        None, "--ca-cert", help="CA bundle for TLS-intercepting proxies, given to the build as a "
        "secret (never stored in the image).", envvar="IMAGEBUILD_CA_CERT"),
    secret: list[str] = typer.Option(
        [], "--secret", help="Build secret ID=env:VAR or ID=file:PATH (repeatable)."),
    layer: str | None = typer.Option(None, "--layer", help="Build only up to this layer."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild every layer."),
    cache_to: str | None = CACHE_TO_OPTION,
    cache_from: str | None = CACHE_FROM_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Build the image's layers in order with BuildKit (unchanged layers are reused)."""
    from imagebuild.builder import Builder, read_secret_sources
    from imagebuild.engine import connect
    from imagebuild.progress import LiveReporter, PlainReporter
    from imagebuild.render import LAYER_NAMES

    spec = _spec(spec_path, base)
    secrets = read_secret_sources(secret, spec)
    cached = _registry_cache_check(cache_to, cache_from, no_cache)
    engine = connect()

    def run(reporter):
        builder = Builder(engine, reporter=reporter)
        options = dict(ca_cert=ca_cert, secrets=secrets, no_cache=no_cache)
        if cached:
            return _build_with_registry_cache(builder, spec, layer, cache_to, cache_from, options)
        return builder.build(spec, up_to=layer, **options)

    if is_terminal() and not as_json:
        with LiveReporter(list(LAYER_NAMES)) as reporter:
            result = run(reporter)
    else:
        result = run(PlainReporter())
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(result.image)


def _registry_cache_check(cache_to: str | None, cache_from: str | None,
                          no_cache: bool) -> bool:
    """Whether a registry cache was asked for; one clear line where it cannot work."""
    from imagebuild import dockercli
    from imagebuild.errors import SpecError

    if not cache_to and not cache_from:
        return False
    for flag, repo in (("--cache-to", cache_to), ("--cache-from", cache_from)):
        last = (repo or "").rsplit("/", 1)[-1]
        if repo is not None and (not repo or any(c in repo for c in ",=@ \t") or ":" in last):
            raise SpecError(f"{flag} {repo!r}: expected a repository without a tag, like "
                            "ghcr.io/you/research-pod-cache")
    if no_cache:  # each step would rebuild the layers before it again
        raise SpecError("--no-cache cannot be combined with --cache-to/--cache-from; drop one")
    cli = dockercli.find_cli()
    if not cli.buildx:
        raise SpecError(f"--cache-to/--cache-from need docker buildx (BuildKit's registry "
                        f"cache); this machine builds with {cli.description}: install the "
                        "buildx plugin (docker-buildx-plugin) or drop the flags")
    return True


def _build_with_registry_cache(builder, spec, up_to, cache_to, cache_from, options):
    """Build layer by layer, each with its own cache ref: one ref shared by all layers
    would be overwritten by every layer's export. Layers built by an earlier step
    are found in the engine and skipped, so nothing builds twice."""
    from imagebuild.errors import SpecError
    from imagebuild.render import LAYER_NAMES

    if up_to is not None and up_to not in LAYER_NAMES:
        raise SpecError(f"--layer: expected one of {', '.join(LAYER_NAMES)}, got {up_to!r}")
    builder.reporter = _FirstReport(builder.reporter)
    result = None
    for name in LAYER_NAMES:
        args = []
        if cache_from:
            args += ["--cache-from", f"type=registry,ref={cache_from}:buildcache-{name}"]
        if cache_to:
            args += ["--cache-to", f"type=registry,ref={cache_to}:buildcache-{name},mode=max"]
        result = builder.build(spec, up_to=name, extra_args=args, **options)
        if name == up_to:
            break
    return result


class _FirstReport:
    """Passes a layer's events on until it finished once: the layer-by-layer build
    meets each finished layer again, as "up to date", in every later step."""

    def __init__(self, reporter):
        self.reporter = reporter
        self.done: set[str] = set()

    def started(self, layer: str, image: str) -> None:
        if layer not in self.done:
            self.reporter.started(layer, image)

    def progress(self, layer: str, status: str) -> None:
        self.reporter.progress(layer, status)

    def finished(self, layer: str, cached: bool, seconds: float) -> None:
        if layer not in self.done:
            self.done.add(layer)
            self.reporter.finished(layer, cached, seconds)

    def failed(self, layer: str) -> None:
        self.reporter.failed(layer)
