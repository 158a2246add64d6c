"""Options and output helpers shared by the CLI modules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

SPEC_OPTION = typer.Option(
    None, "--spec", help="Spec file (default: ./imagebuild.toml, else the built-in default).",
    dir_okay=False,
)
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")


def sub_app(parent: typer.Typer, name: str, help: str) -> typer.Typer:
    """A command group (`imagebuild NAME ...`) with the settings every group shares."""
    group = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        rich_markup_mode=None)
    parent.add_typer(group, name=name, help=help)
    return group


def load(spec_path: Path | None):
    """Load the spec the user pointed at (errors are one-line SpecErrors)."""
    from imagebuild.image.spec import load_spec

    return load_spec(spec_path)


def output_folder(path: Path, flag: str = "--out") -> Path:
    """A folder the command may write into, checked before any work is done."""
    from imagebuild.errors import SpecError

    if path.exists() and not path.is_dir():
        raise SpecError(f"{flag}: {path} is a file; give a folder to write into")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SpecError(f"{flag}: {existing} is a file, so {path} cannot be created; choose another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SpecError(f"{flag}: {existing} is not writable; choose another folder")
    return path


def runpod_client():
    """The RunPod client every command uses: retries are said on stderr as they happen."""
    from imagebuild.runpod.client import Client

    return Client.from_env(on_retry=lambda line: typer.echo(f"imagebuild: {line}", err=True))


def seconds_above_0(flag: str):
    """A typer callback: the flag's seconds are finite and above 0 (``--timeout 0``
    would give up at once, ``nan`` never), checked while the flags are read."""
    from imagebuild import checks

    return lambda value: checks.seconds(value, flag) if value is not None else value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def is_terminal() -> bool:
    return sys.stderr.isatty()


def can_ask() -> bool:
    """Whether a person can answer a question: stdin is a terminal."""
    return sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty()


def confirm(question: str) -> bool:
    """A yes/no question on the terminal; False when nobody can answer (callers
    without a terminal refuse up front instead, naming --yes)."""
    import click

    if not can_ask():
        return False
    try:
        return typer.confirm(question, default=False, err=True)
    except (click.exceptions.Abort, typer.Abort, EOFError):  # typer 0.29 raises its own Abort
        return False
