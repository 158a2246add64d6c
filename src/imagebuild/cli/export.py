"""CLI: `imagebuild export skypilot` (the logic lives in ``imagebuild.export``)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from imagebuild import contract
from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, load, print_json
from imagebuild.errors import SpecError

export_app = typer.Typer(help="Hand the pod image to other schedulers (SkyPilot).",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def skypilot(
    ctx: typer.Context,
    image: str | None = typer.Option(
        None, "--image", metavar="REF", help="Image (default: the digest `imagebuild push` recorded)."),
    spec_path: Path | None = SPEC_OPTION,
    gpu: str | None = typer.Option(
        None, "--gpu", metavar="ALIAS[:N]", help="GPU as for `pod create`: 4090, h100:8, or a "
        "list SkyPilot may choose from (4090,a6000); default: the spec's [pod] gpu."),
    cloud: str = typer.Option("runpod", "--cloud", metavar="runpod|any",
                              help="runpod, or any cloud SkyPilot has credentials for."),
    env: list[str] = typer.Option([], "--env", metavar="K=V", help="Variable in the task (repeatable)."),
    secret: list[str] = typer.Option(
        [], "--secret", metavar="NAME", help="Secret variable, written as a reference; its value comes "
        "from your shell at `sky launch --secret NAME` (repeatable)."),
    sweep: list[str] = typer.Option(
        [], "--sweep", metavar="K=V1,V2,...", help="One task per value (several: every combination)."),
    idle_minutes: int | None = typer.Option(
        None, "--idle-minutes", min=1, help="Tear the cluster down after N idle minutes (autostop)."),
    project: str | None = typer.Option(
        None, "--project", metavar="NAME",
        help=f"Run in {contract.CODE_DIR}/NAME with its .venv (`proj NAME`)."),
    private_registry: bool = typer.Option(
        False, "--private-registry", help="The image needs a registry login: SkyPilot's "
        "SKYPILOT_DOCKER_USERNAME/PASSWORD/SERVER, as references given at launch."),
    results_to: str | None = typer.Option(
        None, "--results-to", metavar="REMOTE", help="rclone remote pod-save copies "
        "/workspace/results to (e.g. mybucket:pods/results); without it results are unsaved "
        "and the task fails after COMMAND."),
    name: str | None = typer.Option(None, "--name", help="Task name (default: the image's name)."),
    out: Path | None = typer.Option(
        None, "--out", metavar="PATH", help="File to write (default: stdout); with --sweep a folder "
        "(default: ./skypilot)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a SkyPilot task that runs COMMAND (after --) on the pod image, then pod-save.

    Launch it with `sky launch TASK.yaml` (or `sky jobs launch` for a managed job).
    COMMAND's words are joined by spaces into one shell line, as ssh does: quote
    '$SEED' to let the task expand it. --json prints {"files": [...] (null: nothing written),
    "tasks": [...], "launch": "sky launch ..."}.
    """
    from imagebuild.export import skypilot as sky
    from imagebuild.export.skypilot_gpus import accelerators
    from imagebuild.project import Project

    command = " ".join(ctx.args).strip()
    if not command:
        raise SpecError("COMMAND: give the command to run after --, e.g. -- python train.py")
    if ctx.args[0].startswith("-") and ctx.args[0] != "--":
        raise SpecError(f"unknown option {ctx.args[0]} (put COMMAND after --)")
    if cloud not in sky.CLOUDS:
        raise SpecError(f'--cloud: expected runpod or any, got "{cloud}"')
    loaded = load(spec_path) if spec_path or not (image and gpu) else None
    ref = sky.check_image(image) if image else Project(loaded).default_image()
    if not gpu:  # the spec's preference list, each with the spec's count
        pod = loaded.spec.pod
        gpu = ",".join(f"{alias}:{pod.gpu_count}" for alias in pod.gpu.split(","))
    export = sky.Export(
        image=ref, command=command, name=sky.check_name(name or _image_name(ref)),
        accelerators=accelerators(gpu), cloud=cloud, envs=sky.parse_envs(env),
        secrets=sky.parse_secrets(secret), sweep=sky.parse_sweeps(sweep), idle_minutes=idle_minutes,
        project=sky.check_project(project) if project else None, private_registry=private_registry,
        results_to=sky.check_results_remote(results_to) if results_to else None)
    _written(sky, sky.tasks(export), out, bool(sweep), as_json)


def _written(sky, bodies: list[dict], out: Path | None, sweep: bool, as_json: bool) -> None:
    """The task on stdout, or the files written and how to launch them (--json: one object)."""
    secrets = [f"--secret {s}" for s in bodies[0].get("secrets", {})]
    if out is None and not sweep:
        if as_json:
            print_json({"files": None, "tasks": bodies,
                        "launch": f"sky launch {' '.join([*secrets, 'TASK.yaml'])}"})
        else:
            typer.echo(sky.dump(bodies[0]), nl=False)
        return
    paths = sky.write(bodies, out or Path("skypilot"), folder=sweep)
    launch = f"sky launch {' '.join(secrets + [str(paths[0])])}"
    if as_json:
        print_json({"files": [str(p) for p in paths], "tasks": bodies, "launch": launch})
        return
    for path in paths:
        typer.echo(path)
    typer.echo(f"launch: {launch}{'  (or sky jobs launch, one per file)' if len(paths) > 1 else ''}",
               err=True)


def _image_name(ref: str) -> str:
    from imagebuild import imageref

    return re.sub(r"[^A-Za-z0-9._-]+", "-", imageref.parse(ref).name).strip("-._") or "pod"
