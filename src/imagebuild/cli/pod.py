"""CLI: `imagebuild pod ...` - RunPod pods and local pods (``local:NAME``).

The logic lives in ``imagebuild.runpod``, ``targets`` and ``lifecycle``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from imagebuild.cli import app
from imagebuild.cli.common import JSON_OPTION, SPEC_OPTION, is_terminal, load, print_json
from imagebuild.errors import UserError

pod_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(
    pod_app,
    name="pod",
    help="Create and drive pods: create, list, status, stop, start, ssh, save, terminate. "
    "A pod started by `imagebuild run --name NAME` is local:NAME.",
)

POD_ARG = typer.Argument(..., metavar="POD", help="Pod name or id, or local:NAME for a local pod.")
WAIT_OPTION = typer.Option(True, "--wait/--no-wait", help="Wait until the pod answers on SSH.")
TIMEOUT_OPTION = typer.Option(900.0, "--timeout", help="Seconds to wait for SSH before giving up.")
# List-valued options live here: a mutable default inside a signature is a trap.
DATACENTER_OPTION = typer.Option(
    [], "--datacenter", help="Preferred data center id (repeatable). [spec: pod.datacenter]"
)
ENV_OPTION = typer.Option([], "--env", "-e", help="NAME=VALUE for the pod (repeatable).")
ENV_FILE_OPTION = typer.Option(None, "--env-file", dir_okay=False, help="dotenv file for the pod.")
COMMAND_ARG = typer.Argument(None, metavar="[-- CMD...]", help="Command to run instead of a shell.")
IDENTITY_OPTION = typer.Option(None, "--identity", "-i", help="Private key file for ssh.")
BUDGET_OPTION = typer.Option(600.0, "--save-timeout", help="Seconds pod-save may take on the pod.")
FORCE_SAVE_HELP = "Go ahead even if the save failed or could not run (says what is lost first)."


def _client():
    from imagebuild.runpod.client import Client

    return Client.from_env()


@contextlib.contextmanager
def _resolve(ref: str) -> Iterator:
    """The pod (a ``targets.Target``) a POD argument names: the one place pod
    references are looked up, RunPod pods and ``local:NAME`` alike."""
    from imagebuild.targets import resolve

    target = resolve(ref)
    try:
        yield target
    finally:
        target.close()


def _lookup(ref: str):
    """The pod as it is now, for commands that only read it."""
    with _resolve(ref) as target:
        return target


def _ui():
    from imagebuild.lifecycle import Ui

    def show(report: dict) -> None:
        from rich.console import Console

        from imagebuild.savereport import render

        render(report, Console(soft_wrap=True))

    return Ui(say=_say, show=show, confirm=_confirm, busy=_progress)


@contextlib.contextmanager
def _interruptible(target) -> Iterator[None]:
    """Ctrl-C stops the waiting, not the pod: say that it exists and costs money."""
    try:
        yield
    except KeyboardInterrupt:
        raise UserError(
            f"stopped waiting; pod {target.label} exists and was left as is - "
            f"`imagebuild pod status {target.ref}`, `imagebuild pod terminate {target.ref}`",
            130,
        ) from None


@contextlib.contextmanager
def _progress(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; otherwise one stderr line per change (logs, CI)."""
    if is_terminal():
        from rich.console import Console

        with Console(stderr=True).status(title) as status:
            yield lambda text: status.update(f"{title}: {text}")
    else:
        yield lambda text: typer.echo(f"{title}: {text}", err=True)


def _wait(client, pod: dict, timeout: float, report: Callable[[str], None]) -> dict:
    from imagebuild.runpod.pods import label, wait_until_ready

    try:
        return wait_until_ready(client, pod, timeout=timeout, on_event=report)
    except KeyboardInterrupt:
        # Ctrl-C stops the waiting, not the pod: say that it exists and costs money.
        raise UserError(
            f"stopped waiting; pod {label(pod)} exists and was left as is - "
            f"`imagebuild pod status {pod['id']}`, `imagebuild pod terminate {pod['id']}`",
            130,
        ) from None


def _say(message: str) -> None:
    typer.echo(message, err=True)


@pod_app.command("create")
def create(
    gpu: str | None = typer.Option(
        None,
        "--gpu",
        help="GPU alias, or a fallback list tried in order: 4090 or 4090,a6000. [spec: pod.gpu]",
    ),
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
        None, "--volume-gb", help="/workspace volume size. [spec: pod.volume_gb]"
    ),
    disk_gb: int | None = typer.Option(
        None, "--disk-gb", help="Container disk size. [spec: pod.disk_gb]"
    ),
    cloud: str | None = typer.Option(
        None, "--cloud", help="secure or community. [spec: pod.cloud]"
    ),
    datacenter: list[str] = DATACENTER_OPTION,
    env: list[str] = ENV_OPTION,
    env_file: Path | None = ENV_FILE_OPTION,
    ports: str | None = typer.Option(
        None, "--ports", help="Ports like 22/tcp,8888/http. [spec: pod.ports]"
    ),
    public_key: str | None = typer.Option(
        None, "--public-key", help="SSH public key or .pub file (default: every ~/.ssh/*.pub)."
    ),
    wait: bool = WAIT_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
    spec: Path | None = SPEC_OPTION,
    idle_stop: str | None = typer.Option(
        None, "--idle-stop", metavar="DURATION", help="The pod stops itself after this long idle "
        "(45m, 2h; off): pod-save, then a stop that keeps /workspace. [spec: pod.idle_stop]"),
    idle_stop_requires_save: bool = typer.Option(
        False, "--idle-stop-requires-save", help="Do not idle-stop when pod-save fails."),
) -> None:
    """Create a pod from the pushed image and wait until SSH answers."""
    from imagebuild import idlestop
    from imagebuild.runpod import pods, view
    from imagebuild.runpod.plan import CreateFlags, plan_create

    loaded = load(spec)
    idle_env = idlestop.pod_env(idle_stop, loaded.spec.pod.idle_stop,
                                idle_stop_requires_save or loaded.spec.pod.idle_stop_requires_save)
    env = [*env, *(f"{name}={value}" for name, value in idle_env.items())]
    flags = CreateFlags(
        gpu=gpu,
        gpu_count=gpu_count,
        name=name,
        image=image,
        volume_gb=volume_gb,
        disk_gb=disk_gb,
        cloud=cloud,
        datacenters=datacenter,
        env=env,
        env_file=env_file,
        ports=ports,
        public_key=public_key,
    )
    with _client() as client:
        options, notes = plan_create(loaded, client, flags)
        for note in notes:
            _say(f"imagebuild: {note}")
        with _progress(f"pod {options.name}") as report:
            pod = pods.create_pod(client, options, on_event=report)
            report(f"created {pod['id']} on {pod.get('gpu', {}).get('id', '?')}")
            if wait:
                pod = _wait(client, pod, timeout, report)
    if json_out:
        print_json(view.masked(pod))
        return
    state = "ready" if wait else f"created ({pod['status']})"
    typer.echo(
        f"pod {pods.label(pod)} {state}: {pod.get('gpu', {}).get('id')}, ${pod.get('cost', 0):.2f}/h"
    )
    typer.echo(f"  imagebuild pod ssh {pod['name']}")


@pod_app.command("list")
def list_(json_out: bool = JSON_OPTION) -> None:
    """List your pods: id, name, status, GPU, $/h, uptime, SSH endpoint."""
    from imagebuild.runpod import view
    from imagebuild.runpod.pods import list_pods

    with _client() as client:
        pods = list_pods(client)
    if json_out:
        print_json([view.masked(pod) for pod in pods])
        return
    if not pods:
        typer.echo("no pods")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in view.COLUMNS:
        table.add_column(
            column, justify="right" if column == "$/H" else "left", no_wrap=column == "ID"
        )
    from imagebuild.runpod import spend

    idle = spend.idle_for(pods)
    for pod in pods:
        table.add_row(*view.row(pod, idle.get(pod["id"])))
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"total ${spend.hourly_total(pods):.2f}/h")
    for pod in pods:
        if idle.get(pod["id"], 0) >= spend.IDLE_WARN_S:
            console.print(f"warning: {pod.get('name')} ({pod['id']}) has used 0% GPU for "
                          f"{view.uptime(idle[pod['id']])} at ${pod.get('cost', 0):.2f}/h; "
                          f"imagebuild pod stop {pod['id']}")


@pod_app.command("status")
def status(pod: str = POD_ARG, json_out: bool = JSON_OPTION) -> None:
    """Show one pod (by name or id, or local:NAME)."""
    target = _lookup(pod)
    if json_out:
        print_json(target.to_json())
        return
    for line in target.status_lines():
        typer.echo(line)


@pod_app.command("stop")
def stop(
    pod: str = POD_ARG,
    save: bool = typer.Option(False, "--save", help="Run pod-save first; do not stop if it fails."),
    force: bool = typer.Option(False, "--force", help=FORCE_SAVE_HELP),
    identity: str | None = IDENTITY_OPTION,
    budget: float = BUDGET_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Stop a pod: the GPU is released and billing stops; /workspace is kept."""
    from imagebuild import lifecycle

    with _resolve(pod) as target:
        options = lifecycle.SaveOptions(identity=identity, budget=budget)
        lifecycle.stop(target, _ui(), options, save_first=save, force=force)
    if json_out:
        print_json(target.to_json())
        return
    typer.echo(
        f"pod {target.label} stopped; /workspace is kept. Resume: imagebuild pod start {target.ref}"
    )


@pod_app.command("start")
def start(
    pod: str = POD_ARG,
    wait: bool = WAIT_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Resume a stopped pod (on the same host, where its volume lives)."""
    with _resolve(pod) as target, _progress(f"pod {target.label}") as report, _interruptible(target):
        target.start(wait, timeout, report)
    if json_out:
        print_json(target.to_json())
        return
    typer.echo(
        f"pod {target.label} {'ready' if wait else 'starting'}: imagebuild pod ssh {target.ref}"
    )


@pod_app.command("ssh")
def ssh(
    pod: str = POD_ARG,
    command: list[str] | None = COMMAND_ARG,
    identity: str | None = IDENTITY_OPTION,
) -> None:
    """Open a shell on a pod, or run a command: imagebuild pod ssh POD -- nvidia-smi."""
    import shutil
    import subprocess

    from imagebuild.runpod.ssh import invocation

    command = list(command or [])
    target = _lookup(pod)
    if target.state != "running":
        raise UserError(
            f"pod {target.label} is {target.status}; start it first: imagebuild pod start {pod}"
        )
    binary = shutil.which("ssh")
    if binary is None:
        raise UserError("ssh not found on PATH; install the OpenSSH client")
    endpoint = target.endpoint()
    if endpoint is None:
        raise UserError(
            f"pod {target.label} has no SSH endpoint yet; check `imagebuild pod status {pod}`"
        )
    call = invocation(endpoint, command, identity=identity, ssh=binary, options=target.ssh_options())
    if endpoint.kind == "proxy" and command:
        _say(
            "imagebuild: no direct SSH port on this pod: running the command through RunPod's gateway"
        )
    result = subprocess.run(call.argv, input=call.stdin, text=call.stdin is not None, check=False)
    raise typer.Exit(result.returncode)


@pod_app.command("save")
def save(
    pod: str = POD_ARG,
    identity: str | None = IDENTITY_OPTION,
    budget: float = BUDGET_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be saved; change nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print pod-save's JSON report on stdout."),
) -> None:
    """Run pod-save on the pod: push git work, sync offline W&B runs, run save hooks.

    Exits 1 unless everything is saved.
    """
    from imagebuild import lifecycle

    with _resolve(pod) as target, _progress(f"pod {target.label}: pod-save"):
        result = lifecycle.save(target, lifecycle.SaveOptions(identity=identity, budget=budget),
                                dry_run=dry_run)
    if result.error is not None:
        raise UserError(f"pod {target.label} not saved: {result.error}")
    if json_out:
        print_json(result.report)
    else:
        _ui().show(result.report)
    if not result.ok:
        raise typer.Exit(1)


@pod_app.command("terminate")
def terminate(
    pod: str = POD_ARG,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(False, "--force", help=FORCE_SAVE_HELP),
    start_to_save: bool = typer.Option(
        False, "--start-to-save", help="A stopped pod: start it, save, then terminate."
    ),
    identity: str | None = IDENTITY_OPTION,
    budget: float = BUDGET_OPTION,
    timeout: float = TIMEOUT_OPTION,
) -> None:
    """Save the pod's work (pod-save), then delete the pod with its /workspace volume.

    Refused, with the pod and volume left as they are, unless everything is saved.
    """
    from imagebuild import lifecycle

    options = lifecycle.SaveOptions(identity=identity, budget=budget, ready_timeout=timeout)
    with _resolve(pod) as target, _interruptible(target):
        lifecycle.terminate(target, _ui(), options, force=force, start_to_save=start_to_save, yes=yes)
    typer.echo(f"pod {target.label} terminated")


def _confirm(question: str) -> bool:
    import click

    try:
        return typer.confirm(question, default=False, err=True)
    except click.exceptions.Abort:  # stdin closed: no one to answer
        return False
