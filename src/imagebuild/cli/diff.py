"""CLI: `imagebuild diff` (what changed between two locks or two built images)."""

from __future__ import annotations

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, print_json


@app.command()
def diff(
    old: str = typer.Argument(..., metavar="OLD", help="A spec, lock file, folder or built image."),
    new: str = typer.Argument(..., metavar="NEW", help="A spec, lock file, folder or built image."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Packages added, removed and changed per layer between two locks or images."""
    from imagebuild.engine import connect
    from imagebuild.image.lockdiff import diff_locks, format_changes, load_lock

    changes = diff_locks(load_lock(old, connect), load_lock(new, connect))
    if as_json:
        print_json([c.to_json() for c in changes])
        return
    for line in format_changes(changes):
        typer.echo(line)
