"""CLI: `imagebuild volume ...` - RunPod network volumes for /workspace.

The logic lives in ``imagebuild.runpod.volumes``.
"""

from __future__ import annotations

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, can_ask, confirm, print_json, runpod_client, sub_app
from imagebuild.errors import UserError

volume_app = sub_app(
    app, "volume", "Network volumes: a /workspace that outlives its pods (pod create --volume NAME)."
)


@volume_app.command("create")
def create(
    name: str = typer.Argument(..., help="Volume name (creating an existing name reuses it)."),
    size: int = typer.Option(..., "--size", "--volume-gb", help="Size in GB (10 to 4096; "
                             "--volume-gb: as `pod create`)."),
    datacenter: str = typer.Option(..., "--datacenter", help="Data center, e.g. US-KS-2."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Create a network volume (idempotent by name); billed for storage until removed."""
    from imagebuild.runpod.volumes import ensure_volume

    with runpod_client() as client:
        volume, made = ensure_volume(client, name, size, datacenter)
    if json_out:
        print_json(volume)
        return
    if made:
        typer.echo(f"network volume {volume['name']} ({volume['id']}) created: {volume['size']} GB in "
                   f"{volume['dataCenter']}; use it: imagebuild pod create --volume {volume['name']}")
    else:
        note = "" if volume["size"] == size else f" (its size is {volume['size']} GB, not {size})"
        typer.echo(f"network volume {volume['name']} ({volume['id']}) already exists in "
                   f"{volume['dataCenter']}{note}")


@volume_app.command("list")
def list_(json_out: bool = JSON_OPTION) -> None:
    """List network volumes: id, name, size, data center, the pods using each."""
    from imagebuild.runpod.pods import list_pods
    from imagebuild.runpod.volumes import list_volumes, network_volume_id

    with runpod_client() as client:
        volumes = list_volumes(client)
        pods = list_pods(client) if volumes else []
    if json_out:
        print_json(volumes)
        return
    if not volumes:
        typer.echo("no network volumes")
        return
    for volume in volumes:
        used = [p.get("name") or p["id"] for p in pods if network_volume_id(p) == volume["id"]]
        typer.echo(f"{volume['id']}  {volume['name']}  {volume['size']} GB  {volume['dataCenter']}  "
                   f"{volume.get('type', '')}  {'used by ' + ', '.join(used) if used else 'unused'}")


@volume_app.command("rm")
def remove(
    volume: str = typer.Argument(..., metavar="NAME|ID"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Delete a network volume and everything on it (refused while a pod uses it)."""
    from imagebuild.runpod.volumes import find_volume, remove_volume, users

    with runpod_client() as client:
        found = find_volume(client, volume)
        label = f"{found['name']} ({found['id']})"
        if not yes:
            if not can_ask():
                raise UserError(f"network volume {label} not removed: stdin is not a terminal to "
                                "confirm on; add --yes", exit_code=2)
            if users(client, found["id"]):
                remove_volume(client, found)  # refuses, naming the pods
            if not confirm(f"Delete network volume {label} and all data on it?"):
                raise UserError(f"network volume {label} not removed")
        remove_volume(client, found)
    if json_out:
        print_json({"removed": found})
        return
    typer.echo(f"network volume {label} removed")

