"""CLI: `imagebuild gpus` - RunPod's GPUs with price and stock, cheapest first
(the logic lives in ``imagebuild.runpod.pricing``)."""

from __future__ import annotations

from pathlib import Path

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, load, print_json, runpod_client
from imagebuild.errors import SpecError


@app.command()
def gpus(
    max_price: float | None = typer.Option(
        None, "--max-price", help="Most USD per hour for the whole pod (all --count GPUs)."),
    min_vram: int | None = typer.Option(None, "--min-vram", help="Least GB of memory per GPU."),
    cloud: str | None = typer.Option(None, "--cloud", help="secure or community (default: both)."),
    count: int = typer.Option(1, "--count", help="GPUs on one pod: prices and stock are for that many."),
    image: str | None = typer.Option(
        None, "--image", help="Only hosts that can run this image's CUDA (default: the pushed image)."),
    spec_path: Path | None = SPEC_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """RunPod's GPU types: the --gpu alias, VRAM, $/h per cloud and stock now, cheapest first."""
    from imagebuild.runpod import pricing

    clouds = pricing.CLOUDS if cloud is None else (cloud.strip().lower(),)
    if clouds[0] not in pricing.CLOUDS:
        raise SpecError(f"--cloud: expected secure or community, got {cloud!r}")
    if count < 1:
        raise SpecError(f"--count: expected 1 or more GPUs, got {count}")
    if max_price is not None and max_price <= 0:
        raise SpecError(f"--max-price: expected USD per hour above 0, got {max_price}")
    floor = _cuda_floor(image, spec_path)
    with runpod_client() as client:
        catalogs = {c: pricing.fetch_catalog(client, c, count, floor) for c in clouds}
    found = pricing.select(pricing.offers(catalogs, count), max_price, min_vram)
    if as_json:
        print_json({"count": count, "minCudaVersion": floor, "gpus": [o.to_json() for o in found]})
        return
    if not found:
        typer.echo("no GPU type matches; loosen --max-price, --min-vram or --cloud")
        return
    _print_table(found, clouds, count, floor)


def _cuda_floor(image: str | None, spec_path: Path | None) -> str | None:
    """The CUDA version the pod's image needs: the pushed image's, else the spec's."""
    from imagebuild.project import Project
    from imagebuild.runpod.image import cuda_floor, normalize_cuda

    loaded = load(spec_path)
    project = Project(loaded)
    image = image or project.pushed_image()
    if image:
        return cuda_floor(image, project.pushed_cuda(image))
    cuda = loaded.spec.cuda_version
    return normalize_cuda(cuda) if cuda else None


def _print_table(found, clouds: tuple[str, ...], count: int, floor: str | None) -> None:
    from imagebuild.cli import tables

    # Narrow: RunPod's long GPU id shortens first, then the stock levels give way;
    # the alias to type, the memory and the prices stay whole.
    columns = [tables.Column("--gpu"), tables.Column("ID", squeeze=1, keep=12),
               tables.Column("VRAM", right=True)]
    for rank, cloud in enumerate(clouds, start=2):
        columns += [tables.Column(f"{cloud.upper()} $/H", right=True),
                    tables.Column("STOCK", squeeze=rank)]
    rows = []
    for offer in found:
        cells = [offer.alias, offer.id, f"{offer.memory} GB"]
        for cloud in clouds:
            price = offer.price[cloud]
            cells += [f"{price:.2f}" if price is not None else "-", offer.stock[cloud].lower()]
        rows.append(cells)
    tables.echo(columns, rows)
    what = f"{count} GPUs" if count > 1 else "1 GPU"
    cuda = f", hosts with CUDA {floor} or newer" if floor else ""
    typer.echo(f"prices per hour for {what}{cuda}; stock is RunPod's level now")
