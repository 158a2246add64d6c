"""CLI: `imagebuild pod create` and `pod update` - what a pod runs, and where.

The logic lives in ``imagebuild.runpod`` (plan, launch, registries, volumes).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from imagebuild import checks
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, load, print_json
from imagebuild.cli.pod import (
    BUDGET_OPTION,
    DATACENTER_OPTION,
    ENV_FILE_OPTION,
    ENV_OPTION,
    FORCE_SAVE_HELP,
    IDENTITY_OPTION,
    POD_ARG,
    TIMEOUT_OPTION,
    WAIT_OPTION,
    _client,
    _interruptible,
    _progress,
    _resolve,
    _say,
    _ui,
    pod_app,
)
from imagebuild.errors import UserError

GPU_OPTION = typer.Option(
    None, "--gpu", metavar="ALIAS[:N]", help="GPU alias, or a fallback list tried in order: 4090 or "
    "4090,a6000; :N sets the count as --gpu-count does (4090:2, as `export skypilot`). [spec: pod.gpu]"
)
VOLUME_OPTION = typer.Option(
    None, "--volume", help="Network volume (name or id) for /workspace: kept when the pod goes, "
    "any host in its data center can use it. [spec: pod.volume]"
)
REGISTRY_AUTH_OPTION = typer.Option(
    None, "--registry-auth", help="RunPod registry credential id for a private image "
    "(default: made from your docker login / IMAGEBUILD_REGISTRY_*)."
)
NO_REGISTRY_AUTH_OPTION = typer.Option(
    False, "--no-registry-auth", help="Send no registry credential (a public image)."
)
IDLE_STOP_OPTION = typer.Option(
    None, "--idle-stop", metavar="DURATION", help="The pod stops itself after this long idle "
    "(45m, 2h; off): pod-save, then a stop that keeps /workspace. [spec: pod.idle_stop]"
)
SECRET_OPTION = typer.Option(
    [], "--secret", metavar="NAME|VAR=NAME", help="Env VAR (default NAME) from your RunPod secret NAME: "
    "sends {{ RUNPOD_SECRET_NAME }}, which RunPod fills in at boot (repeatable)."
)
ALLOW_PLAIN_SECRET_OPTION = typer.Option(
    False, "--allow-plain-secret", help="Send env values that look like tokens in clear anyway "
    "(they are readable in the pod's config)."
)
SAVE_EVERY_OPTION = typer.Option(
    None, "--save-every", metavar="DURATION", help="Autosave: an incremental pod-save this often "
    "(15m, 1h; off) [default: .pod/save.toml's [save] every] [spec: pod.save_every]."
)
COMPRESSION_OPTION = typer.Option(
    None, "--compression", metavar="gzip|zstd", help="zstd: start from the pushed zstd variant (`push "
    "--compression both`), faster to unpack on Docker 23+ / containerd hosts; a pod that goes to ERROR "
    "on it is terminated and created again from the gzip image. [spec: build.compression]"
)
IDLE_STOP_REQUIRES_SAVE_OPTION = typer.Option(
    False, "--idle-stop-requires-save", help="Do not idle-stop when pod-save fails."
)


@pod_app.command("create")
def create(
    gpu: str | None = GPU_OPTION,
    gpu_count: int | None = typer.Option(
        None, "--gpu-count", help="GPUs on the pod. [spec: pod.gpu_count]"
    ),
    name: str | None = typer.Option(
        None, "--name", help="Pod name (default: image name + random suffix)."
    ),
    image: str | None = typer.Option(
        None, "--image", help="Image to run (default: the digest `imagebuild push` recorded)."
    ),
    volume_gb: int | None = typer.Option(
        None, "--volume-gb", help="/workspace volume size in GB (as `volume create --volume-gb`). "
        "[spec: pod.volume_gb]"
    ),
    disk_gb: int | None = typer.Option(
        None, "--disk-gb", help="Container disk size. [spec: pod.disk_gb]"
    ),
    cloud: str | None = typer.Option(
        None, "--cloud", help="secure or community. [spec: pod.cloud]"
    ),
    datacenters: list[str] = DATACENTER_OPTION,
    env: list[str] = ENV_OPTION,
    env_file: Path | None = ENV_FILE_OPTION,
    secrets: list[str] = SECRET_OPTION,
    allow_plain_secret: bool = ALLOW_PLAIN_SECRET_OPTION,
    ports: str | None = typer.Option(
        None, "--ports", help="Ports like 22/tcp,8888/http. [spec: pod.ports]"
    ),
    public_key: str | None = typer.Option(
        None, "--public-key", help="SSH public key or .pub file to register on your RunPod account "
        "(default: every ~/.ssh/*.pub)."
    ),
    volume: str | None = VOLUME_OPTION,
    registry_auth: str | None = REGISTRY_AUTH_OPTION,
    no_registry_auth: bool = NO_REGISTRY_AUTH_OPTION,
    idle_stop: str | None = IDLE_STOP_OPTION,
    idle_stop_requires_save: bool = IDLE_STOP_REQUIRES_SAVE_OPTION,
    save_every: str | None = SAVE_EVERY_OPTION,
    wait: bool = WAIT_OPTION,
    timeout: float = TIMEOUT_OPTION,
    canary_mode: str | None = typer.Option(
        None, "--canary", metavar="off|warn|require", help="After SSH, wait for the pod's GPU check: "
        "require (default) terminates a pod whose check failed and creates it again elsewhere (same GPU "
        "once more, then the next --gpu choice); warn keeps it and says what failed. [spec: pod.canary]"),
    compression: str | None = COMPRESSION_OPTION,
    json_out: bool = JSON_OPTION,
    spec: Path | None = SPEC_OPTION,
) -> None:
    """Create a pod from the pushed image and wait until SSH answers and its GPU check passed.

    A pod that does not get ready (timeout, ERROR, Ctrl-C, an error) is terminated again, after
    its log is read: nothing bills for it (a network volume is kept). So is one whose GPU check
    (pod-canary) failed: the pod is created again on another host.
    """
    from imagebuild.image import compression as layers
    from imagebuild.project import Project
    from imagebuild.runpod import hostcheck
    from imagebuild.runpod.plan import CreateFlags

    flags = CreateFlags(
        gpu=gpu, gpu_count=gpu_count, name=name, image=image, volume_gb=volume_gb, disk_gb=disk_gb,
        cloud=cloud, datacenters=datacenters, env=env, env_file=env_file, ports=ports,
        public_key=public_key, volume=volume, registry_auth=registry_auth,
        no_registry_auth=no_registry_auth, secrets=secrets, allow_plain_secret=allow_plain_secret,
        idle_stop=idle_stop, idle_stop_requires_save=idle_stop_requires_save, save_every=save_every)
    loaded = load(spec)
    mode = canary_mode or loaded.spec.pod.canary
    if mode not in hostcheck.MODES:
        raise UserError(f"--canary {mode}: expected one of {', '.join(hostcheck.MODES)}", 2)
    first, fallback = layers.pod_images(Project(loaded), layers.pod_mode(compression, loaded.spec),
                                        flags.image)
    flags = dataclasses.replace(flags, image=first)
    _print_created(_launch(loaded, flags, wait, timeout, mode, fallback), wait, json_out)


def _launch(loaded, flags, wait: bool, timeout: float, mode: str = "off",
            fallback: str | None = None) -> dict:
    """Plan the pod (notes printed), create it, and wait for it (and its GPU check): the one
    library call. ``fallback``: the gzip image to create it from again when the zstd pod errs."""
    from imagebuild.image.compression import with_fallback
    from imagebuild.runpod import hostcheck
    from imagebuild.runpod.launch import launch
    from imagebuild.runpod.plan import plan_create

    with _client() as client:
        options, notes = plan_create(loaded, client, flags)
        for note in notes:
            _say(f"imagebuild: {note}")
        with _progress(f"pod {options.name}", timeout if wait else None) as report:
            def attempt(options):
                if wait and mode != "off":
                    return hostcheck.create_checked(client, options, mode=mode, timeout=timeout,
                                                    on_event=report, say=_say)
                return launch(client, options, wait=wait, timeout=timeout, on_event=report, say=_say)

            try:
                return with_fallback(attempt, options, fallback, _say)
            except KeyboardInterrupt:
                raise UserError(f"interrupted; `imagebuild pod list` shows pod {options.name}", 130) from None


def _print_created(pod: dict, wait: bool, json_out: bool) -> None:
    from imagebuild.runpod import pods, view

    if json_out:
        print_json(view.pod_json(pod))
        return
    state = "ready" if wait else f"created ({pod['status']})"
    typer.echo(
        f"pod {pods.label(pod)} {state}: {pod.get('gpu', {}).get('id')}, ${pod.get('cost', 0):.2f}/h"
    )
    typer.echo(f"  imagebuild pod ssh {pod['name']}")


@pod_app.command("update")
def update(
    pod: str = POD_ARG,
    image: str | None = typer.Option(
        None, "--image", help="Image to run (default: the digest `imagebuild push` recorded)."
    ),
    registry_auth: str | None = REGISTRY_AUTH_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Restart a running pod without asking."),
    force: bool = typer.Option(False, "--force", help=FORCE_SAVE_HELP),
    identity: str | None = IDENTITY_OPTION,
    budget: float = BUDGET_OPTION,
    json_out: bool = JSON_OPTION,
    spec: Path | None = SPEC_OPTION,
) -> None:
    """Point a pod at a new image, on the same volume. RunPod restarts a running pod at
    once to apply it (pod-save runs first); a stopped pod stays stopped."""
    from imagebuild.pods import lifecycle
    from imagebuild.project import Project
    from imagebuild.runpod import registries, updates

    ref = checks.image_reference(image) if image is not None else Project(load(spec)).default_image()
    if pod.startswith("local:"):
        raise UserError(f"{pod}: `pod update` changes RunPod pods; restart a local pod with "
                        "`imagebuild run --name NAME --image REF`")
    options = lifecycle.SaveOptions(identity=identity, budget=budget)
    with _resolve(pod) as target, _interruptible(target):
        if registry_auth:
            registries.check_given(target.client, registry_auth)
            credential, note = registry_auth, None
        else:
            credential, note = registries.ensure(target.client, ref)
        if note:
            _say(f"imagebuild: {note}")
        updated, when = lifecycle.update(
            target, _ui(), options, lambda: updates.update_image(target.client, target.pod, ref, credential),
            force=force, yes=yes)
    if json_out:
        from imagebuild.runpod.view import pod_json

        print_json(pod_json(updated))
        return
    typer.echo(f"pod {target.label} now runs {ref}; {when}")
