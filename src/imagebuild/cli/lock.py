"""CLI: `imagebuild lock` (resolve the spec's open ends into imagebuild.lock)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, load, print_json
from imagebuild.errors import UserError

CA_CERT_OPTION = typer.Option(
    None, "--ca-cert", help="CA bundle for TLS-intercepting proxies (apt inside the base, uv, npm); "
    "default: the host's (SSL_CERT_FILE, ...; see the README); none: no bundle.",
    envvar="IMAGEBUILD_CA_CERT")


@app.command()
def lock(
    spec_path: Path | None = SPEC_OPTION,
    upgrade: bool = typer.Option(
        False, "--upgrade", help="Resolve again: everything, or only the NAMEs given (a section: "
        "base, system, python, node, sim; or a package of one)."),
    names: list[str] = typer.Argument(None, metavar="[NAME]...", show_default=False),
    check: bool = typer.Option(False, "--check", help="Exit 1 when the spec and the lock disagree."),
    base: str | None = typer.Option(
        None, "--base", help="Base image instead of the spec's image.base (as `build --base`)."),
    ca_cert: Path | None = CA_CERT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Pin everything the spec leaves open into the lock beside it (SPEC.lock).

    --json prints {"lock", "written", "changes": [{"layer", "name", "old", "new", "kind"}],
    "seconds"} (--check: {"lock", "matches": true}; a stale lock is still exit 1).
    """
    from imagebuild.image.lock import lock_path, read_lock

    loaded = load(spec_path)
    spec = loaded.spec.with_base(base) if base else loaded.spec
    path = lock_path(loaded.path)
    previous = read_lock(path)
    if names and not upgrade:
        raise UserError("NAMEs go with --upgrade: `imagebuild lock --upgrade NAME...`", 2)
    if check:
        if previous is None:
            raise UserError(f"{path}: no lock; run `imagebuild lock`")
        reason = previous.stale(spec)
        if reason:
            raise UserError(f"{path} is stale: {reason}; run `imagebuild lock`")
        if as_json:
            print_json({"lock": str(path), "matches": True})
        else:
            typer.echo(f"{path.name} matches {loaded.label}")
        return
    from imagebuild.cli.progress import say_progress
    from imagebuild.engine import connect
    from imagebuild.image import hostca
    from imagebuild.image.resolve import resolve_lock

    ca_cert, ca_note = hostca.choose(ca_cert)
    started = time.monotonic()

    notes = [ca_note] if ca_note else []

    def say(section: str) -> None:  # resolving takes 6-35 s: never a silent wait
        while notes:  # said once resolving starts: a bad NAME stays a one-line error
            say_progress(f"imagebuild: {notes.pop()}")
        say_progress(f"imagebuild: resolving {section} ({time.monotonic() - started:.0f} s so far)")

    resolved = resolve_lock(spec, connect(), previous, upgrade=(names or []) if upgrade else None,
                            ca_cert=ca_cert, on_section=say)
    _report(path, previous, resolved, started, as_json)


def _report(path: Path, previous, resolved, started: float, as_json: bool) -> None:
    """Write the lock unless it is the same; say what changed (people: a diff, scripts: JSON)."""
    from imagebuild.image.lock import write_lock
    from imagebuild.image.lockdiff import diff_locks, format_changes

    same = previous is not None and resolved.text() == previous.text()
    if not same:
        write_lock(path, resolved)
    changes = diff_locks(previous, resolved) if previous is not None and not same else []
    if as_json:
        print_json({"lock": str(path), "written": not same, "changes": [c.to_json() for c in changes],
                    "seconds": round(time.monotonic() - started, 1)})
    elif same:
        typer.echo(f"{path.name}: up to date")
    else:
        for line in format_changes(changes) if previous is not None else []:
            typer.echo(line)
        typer.echo(f"wrote {path} in {time.monotonic() - started:.1f} s")
