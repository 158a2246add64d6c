"""CLI: `imagebuild layers [IMAGE]`: which packages are in which layer, with sizes."""

from __future__ import annotations

from pathlib import Path

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, load, print_json
from imagebuild.errors import UserError


@app.command()
def layers(
    image: str | None = typer.Argument(None, help="Image to list (default: the spec's "
                                       "name:version)."),
    spec_path: Path | None = SPEC_OPTION,
    against: str | None = typer.Option(
        None, "--against", metavar="IMAGE", help="Mark the layers IMAGE does not have as new."),
    by: str = typer.Option(
        "layer", "--by", metavar="layer|kind", help="One row per layer, or per kind of file "
        "(CUDA libraries, torch/triton, .pyc, static archives, headers, ...: reads every layer)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every layer of an image, largest first: its size and the packages (chunk) in it."""
    from imagebuild.engine import connect
    from imagebuild.image.layers import diff_ids, inventory, summary, table

    if by not in ("layer", "kind"):
        raise UserError(f"--by: expected layer or kind, got {by!r}", 2)
    if by == "kind" and against:
        raise UserError("--against: only with --by layer (the default)", 2)
    if image is None:
        spec = load(spec_path).spec
        image = f"{spec.image.name}:{spec.image.version}"
    engine = connect()
    if by == "kind":
        _by_kind(engine, image, as_json)
        return
    if against and engine.image(against) is None:  # a typo would mark every layer new
        raise UserError(f"--against: image {against} is not in the local engine; pull it or name a "
                        "built one (`docker images`)", 2)
    previous = diff_ids(engine, against) if against else None
    found = inventory(engine, image, previous)
    if as_json:
        print_json({"image": image, **summary(found), "layers": [la.to_json() for la in found]})
        return
    typer.echo(image)
    for line in table(found, limit=None):
        typer.echo(line)


def _by_kind(engine, image: str, as_json: bool) -> None:
    from imagebuild.image.kinds import by_kind, kind_table
    from imagebuild.image.layers import human_size

    if engine.image(image) is None:
        raise UserError(f"image {image} is not in the local engine; build or pull it first", 2)
    report = by_kind(engine, image)
    if as_json:
        print_json({"image": image, **report.to_json()})
        return
    typer.echo(image)
    for line in kind_table(report, human_size):
        typer.echo(line)
