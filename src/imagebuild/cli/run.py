"""CLI: `imagebuild run` - a pod image on the local engine with RunPod's semantics
(the logic lives in ``imagebuild.pods.localrun``)."""

from __future__ import annotations

from pathlib import Path

import typer

from imagebuild import checks
from imagebuild.cli.app import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, load, print_json
from imagebuild.errors import SpecError


@app.command()
def run(
    image: str | None = typer.Option(
        None, "--image", help="Image to run (default: the spec's pushed image, else its local build)."),
    spec_path: Path | None = SPEC_OPTION,
    name: str | None = typer.Option(None, "--name", help="Pod name (default: from the image name)."),
    public_key: str | None = typer.Option(
        None, "--public-key", help="SSH public key or .pub file (default: every ~/.ssh/*.pub)."),
    env_file: Path | None = typer.Option(
        None, "--env-file", dir_okay=False, help="dotenv file of the pod's variables (a RunPod template's)."),
    recreate: bool = typer.Option(
        False, "--recreate", help="Replace the container by a new one on the same volume (a RunPod "
        "stop/start: fresh container disk, /workspace kept; the pod's variables are kept too)."),
    idle_stop: str | None = typer.Option(
        None, "--idle-stop", metavar="DURATION", help="Stop the pod after this long idle (45m, 2h; "
        "off). It runs pod-save first; the container exits, the volume stays. [spec: pod.idle_stop]"),
    idle_stop_requires_save: bool = typer.Option(
        False, "--idle-stop-requires-save", help="Do not idle-stop the pod when its pod-save fails."),
    save_every: str | None = typer.Option(
        None, "--save-every", metavar="DURATION", help="Autosave: an incremental pod-save this "
        "often (15m, 1h; off) [default: .pod/save.toml's [save] every] [spec: pod.save_every]."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a pod locally: /workspace on a named volume, SSH and Jupyter on 127.0.0.1."""
    from imagebuild.engine import connect
    from imagebuild.image.spec import PodSection
    from imagebuild.pods import canary, localrun
    from imagebuild.pods.podenv import PUBLIC_KEY, public_keys, read_env_file, read_public_key
    from imagebuild.project import Project, pod_host_env, pod_settings

    if image and spec_path:
        raise SpecError("pass --image or --spec, not both")
    _check(name, image, idle_stop, save_every)
    # The [pod] keys run has flags for, checked as pod create checks them (one set of
    # bounds); the spec's values join below, where the spec describes the pod.
    pod_flags = {"idle_stop": idle_stop, "idle_stop_requires_save": idle_stop_requires_save or None,
                 "save_every": save_every}
    host_env = pod_host_env(PodSection(), pod_settings(PodSection(), pod_flags), idle_stop)
    keys = read_public_key(public_key) if public_key else public_keys(Path.home() / ".ssh")
    if not keys:
        raise SpecError("no SSH public key in ~/.ssh: pass --public-key FILE "
                        "(or create one with ssh-keygen -t ed25519)")
    env_vars = read_env_file(env_file) if env_file else {}
    env_vars.update(host_env)
    engine = connect()

    existing = localrun.find(engine, name) if name else None
    if image is None and (existing is None or recreate or spec_path):
        loaded = load(spec_path)
        if existing is not None and loaded.path is None:
            image = existing.image  # no spec here: the pod keeps its image
        else:
            image = Project(loaded).default_image(engine)
        # The spec's [pod] applies to the pod the spec describes, the flags over it.
        env_vars.update(pod_host_env(loaded.spec.pod, pod_settings(loaded.spec.pod, pod_flags), idle_stop))
    name = name or localrun.default_name(image or "")
    existing = existing or localrun.find(engine, name)
    env = {**localrun.runpod_env(name), **env_vars, PUBLIC_KEY: keys}
    if existing is not None and recreate:
        pod = localrun.recreate(engine, name, image, env)
    else:
        if existing is not None and image and existing.image != image and not as_json:
            typer.echo(f"note: pod {name} runs {existing.image}; --recreate switches it to {image}", err=True)
        pod = localrun.start(engine, name, image or existing.image, env)

    found = localrun.wait_canary(engine, pod)
    if as_json:
        from imagebuild.pods import podjson

        print_json({**podjson.local(pod), "canary": found.to_json()})
        return
    identity = None
    if public_key and public_key.endswith(".pub") and Path(public_key[:-4]).expanduser().is_file():
        identity = str(Path(public_key[:-4]).expanduser())
    typer.echo(f"pod {pod.name} is ready: container {pod.container}, volume {pod.volume} at /workspace")
    if pod.ssh:
        typer.echo(" ".join(pod.ssh.command(alias=pod.container, identity=identity)))
    for line in canary.status_lines(found):
        typer.echo(line)
    if pod.jupyter_port and env_vars.get("JUPYTER_PASSWORD"):
        typer.echo(f"jupyter: http://127.0.0.1:{pod.jupyter_port}/ (if the image has JupyterLab)")


def _check(name: str | None, image: str | None, idle_stop: str | None, save_every: str | None) -> None:
    """The flags' own values, before the engine is asked for anything."""
    if name is not None:
        checks.pod_name(name)
    if image is not None:
        checks.image_reference(image)
    for flag, value in (("--idle-stop", idle_stop), ("--save-every", save_every)):
        if value is not None:
            checks.non_empty(value, flag)
