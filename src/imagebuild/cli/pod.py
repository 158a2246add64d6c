"""CLI: `imagebuild pod ...` - RunPod pods and local pods (``local:NAME``).

The logic lives in ``imagebuild.runpod``, ``targets`` and ``lifecycle``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from imagebuild.cli.app import app
from imagebuild.cli.common import (
    JSON_OPTION,
    can_ask,
    confirm,
    print_json,
    runpod_client,
    seconds_above_0,
    sub_app,
)
from imagebuild.errors import UserError

pod_app = sub_app(
    app,
    "pod",
    "Create and drive pods: create, list, status, stop, start, ssh, logs, update, save, "
    "terminate. A pod started by `imagebuild run --name NAME` is local:NAME.",
)

POD_ARG = typer.Argument(..., metavar="POD", help="Pod name or id, or local:NAME for a local pod.")
WAIT_OPTION = typer.Option(True, "--wait/--no-wait", help="Wait until the pod answers on SSH.")
TIMEOUT_OPTION = typer.Option(900.0, "--timeout", callback=seconds_above_0("--timeout"),
                              help="Seconds to wait for SSH before giving up.")
# List-valued options live here: a mutable default inside a signature is a trap.
DATACENTER_OPTION = typer.Option(
    [], "--datacenter", help="Preferred data center id (repeatable). [spec: pod.datacenter]"
)
ENV_OPTION = typer.Option([], "--env", "-e", help="NAME=VALUE for the pod (repeatable).")
ENV_FILE_OPTION = typer.Option(None, "--env-file", dir_okay=False, help="dotenv file for the pod.")
COMMAND_ARG = typer.Argument(None, metavar="[-- CMD...]", help="Command to run instead of a shell.")
IDENTITY_OPTION = typer.Option(None, "--identity", "-i", help="Private key file for ssh.")
BUDGET_OPTION = typer.Option(600.0, "--save-timeout", callback=seconds_above_0("--save-timeout"),
                             help="Seconds pod-save may take on the pod.")
FORWARD_OPTION = typer.Option(
    [], "--forward", "-L", help="Forward a pod port to localhost: 8888 or LOCAL:REMOTE (repeatable)."
)
JSON_SSH_TIMEOUT_S = 7 * 24 * 3600.0  # `pod ssh --json -- CMD` waits for CMD as ssh would
FORCE_SAVE_HELP = "Go ahead even if the save failed or could not run (says what is lost first)."


def _client():
    return runpod_client()  # pod_create shares it


@contextlib.contextmanager
def _resolve(ref: str) -> Iterator:
    """The pod (a ``targets.Target``) a POD argument names: the one place pod
    references are looked up, RunPod pods and ``local:NAME`` alike."""
    from imagebuild.pods.targets import resolve

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
    from imagebuild.pods.lifecycle import Ui

    def show(report: dict) -> None:
        from rich.console import Console

        from imagebuild.pods.savereport import render

        render(report, Console(soft_wrap=True))

    return Ui(say=_say, show=show, confirm=confirm, busy=_progress, can_ask=can_ask())


@contextlib.contextmanager
def _interruptible(target) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) ends the command in one line; a pod it started was
    stopped again on the way out (see lifecycle.stop_on_failure)."""
    try:
        yield
    except KeyboardInterrupt:
        raise UserError(
            f"interrupted; `imagebuild pod status {target.ref}` shows where pod {target.label} is", 130
        ) from None


def _progress(title: str, timeout: float | None = None):
    """A wait's progress (see cli.progress): a ticking status on a terminal, else lines."""
    from imagebuild.cli.progress import waiting

    return waiting(title, timeout)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _pod_columns():
    from imagebuild.cli.tables import Column

    # On a narrow terminal the id shortens first (the full id is in --json), then SSH,
    # uptime and GPU give way; name, status and price are always whole.
    return (Column("ID", squeeze=1, keep=6), Column("NAME"), Column("STATUS"),
            Column("GPU", squeeze=4, keep=8), Column("$/H", right=True),
            Column("UPTIME", squeeze=3), Column("SSH", squeeze=2))


@pod_app.command("list")
def list_(json_out: bool = JSON_OPTION) -> None:
    """List your pods: id, name, status, GPU, $/h, uptime, SSH endpoint."""
    from imagebuild.runpod import view
    from imagebuild.runpod.pods import list_pods

    with _client() as client:
        pods = list_pods(client)
    if json_out:
        print_json([view.pod_json(pod) for pod in pods])
        return
    if not pods:
        typer.echo("no pods")
        return
    from imagebuild.cli import tables
    from imagebuild.runpod import spend

    idle = spend.idle_for(pods)
    tables.echo(_pod_columns(), [view.row(pod, idle.get(pod["id"])) for pod in pods])
    typer.echo(f"total ${spend.hourly_total(pods):.2f}/h")
    for pod in pods:
        if idle.get(pod["id"], 0) >= spend.IDLE_WARN_S:
            typer.echo(f"warning: {pod.get('name')} ({pod['id']}) has used 0% GPU for "
                       f"{view.uptime(idle[pod['id']])} at ${pod.get('cost', 0):.2f}/h; "
                       f"imagebuild pod stop {pod['id']}")


@pod_app.command("status")
def status(pod: str = POD_ARG, json_out: bool = JSON_OPTION) -> None:
    """Show one pod (by name or id, or local:NAME)."""
    from imagebuild.pods import autosave, canary

    target = _lookup(pod)
    found = canary.read(target) if target.state == "running" else canary.Canary(error="not running")
    saved = autosave.read_status(target)
    if json_out:
        print_json({**target.to_json(), "canary": found.to_json(), "save": saved})
        return
    for line in [*target.status_lines(), *canary.status_lines(found), *autosave.lines(saved)]:
        typer.echo(line)


@pod_app.command("stop")
def stop(
    pod: str = POD_ARG,
    save: bool = typer.Option(False, "--save", help="Run pod-save first; do not stop if it fails."),
    force: bool = typer.Option(False, "--force", help=FORCE_SAVE_HELP + " Also: stop although "
                               "jobs (`pod run`) are running, without asking."),
    kill_jobs: bool = typer.Option(False, "--kill-jobs", help="Kill running jobs (`pod run`) "
                                   "first; without it a stop asks (refuses without a terminal)."),
    identity: str | None = IDENTITY_OPTION,
    budget: float = BUDGET_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Stop a pod: the GPU is released and billing stops; /workspace is kept.
    Running jobs end with it: said first, asked, or --kill-jobs."""
    from imagebuild.pods import lifecycle

    with _resolve(pod) as target:
        options = lifecycle.SaveOptions(identity=identity, budget=budget, kill_jobs=kill_jobs)
        lifecycle.stop(target, _ui(), options, save_first=save, force=force)
    _done(target, json_out,
          f"pod {target.label} stopped; /workspace is kept. Resume: imagebuild pod start {target.ref}")


@pod_app.command("start")
def start(
    pod: str = POD_ARG,
    wait: bool = WAIT_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Resume a stopped pod (on the same host, where its volume lives)."""
    from imagebuild.pods import canary, lifecycle

    with _resolve(pod) as target, _interruptible(target):
        lifecycle.start(target, _ui(), wait, timeout)
        # The host it resumed on may have changed since (a driver update): never continue silently.
        failure = canary.after_start(target, canary.wait(lambda: canary.read(target))) if wait else None
    if failure:
        raise UserError(failure)
    state = "ready" if wait else "starting"
    _done(target, json_out, f"pod {target.label} {state}: imagebuild pod ssh {target.ref}")


def _done(target, json_out: bool, line: str) -> None:
    """The pod as JSON with --json, else one line for people."""
    if json_out:
        print_json(target.to_json())
    else:
        typer.echo(line)


@pod_app.command("ssh")
def ssh(
    pod: str = POD_ARG,
    command: list[str] | None = COMMAND_ARG,
    identity: str | None = IDENTITY_OPTION,
    forward: list[str] = FORWARD_OPTION,
    json_out: bool = typer.Option(False, "--json", help='With -- CMD: print {"exit_code", "stdout", '
                                  '"stderr"} when CMD ends (its exit code is the command\'s).'),
) -> None:
    """Open a shell on a pod, or run a command: imagebuild pod ssh POD -- nvidia-smi."""
    import shutil
    import subprocess

    from imagebuild.pods.ssh import invocation

    command = list(command or [])
    if json_out and (not command or forward):
        raise UserError("--json goes with a command and no --forward: "
                        "imagebuild pod ssh POD --json -- CMD", 2)
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
    if json_out:
        _ssh_json(target, endpoint, command, identity, binary)
    from imagebuild.pods.ssh import forwards

    extra = forwards(forward, endpoint)
    call = invocation(endpoint, command, identity=identity, ssh=binary,
                      options=[*target.ssh_options(), *extra])
    if endpoint.kind == "proxy" and command:
        _say(
            "imagebuild: no direct SSH port on this pod: running the command through RunPod's gateway"
        )
    result = subprocess.run(call.argv, input=call.stdin, text=call.stdin is not None, check=False)
    raise typer.Exit(result.returncode)


def _ssh_json(target, endpoint, command: list[str], identity: str | None, binary: str) -> None:
    """`pod ssh POD --json -- CMD`: CMD's output framed as one JSON object and its exit code
    kept, through either endpoint (the gateway's own exit status says nothing: remote.run
    frames it). Through the gateway stderr arrives inside stdout (``merged``)."""
    from imagebuild.pods import remote

    done = remote.run(endpoint, " ".join(command), timeout=JSON_SSH_TIMEOUT_S,
                      options=target.ssh_options(), identity=identity, ssh=binary)
    if done.error is not None:
        raise UserError(f"pod {target.label}: {done.error}")
    print_json({"exit_code": done.exit_code, "stdout": done.text,
                "stderr": None if done.merged else done.stderr, "merged": done.merged})
    raise typer.Exit(done.exit_code)


@pod_app.command("logs")
def logs(
    pod: str = POD_ARG,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming new lines."),
    tail: int = typer.Option(100, "--tail", min=0, max=5000, help="Earlier lines to show first."),
    json_out: bool = typer.Option(False, "--json", help='One JSON object per line: '
                                  '{"ts", "source" (container or system), "line"}.'),
) -> None:
    """Show a RunPod pod's logs (container and system): image pulls, CUDA errors, the entrypoint."""
    import json

    from imagebuild.runpod.logs import as_json, read_events, text

    if pod.startswith("local:"):
        raise UserError(f"{pod}: a local pod's logs are `docker logs`; `pod logs` reads RunPod pods")
    with _resolve(pod) as target, contextlib.suppress(KeyboardInterrupt):
        for event in read_events(target.client, target.ref, tail=tail, follow=follow):
            typer.echo(json.dumps(as_json(event)) if json_out else text(event))


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
    from imagebuild.pods import lifecycle

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


@pod_app.command("restore")
def restore(
    pod: str = POD_ARG,
    repos: list[str] = typer.Argument(None, metavar="[REPO...]", help="Clones on the pod (code/proj: under "
                                      "/workspace; or absolute)."),
    every: bool = typer.Option(False, "--all", help="Every clone in the pod's /workspace."),
    json_out: bool = JSON_OPTION,
) -> None:
    """After a crash, in a new pod with the repositories cloned to their old paths: bring
    each clone's newest autosave back (the image's pod-restore --latest), byte for byte.

    Exits 1 unless every clone was restored.
    """
    from imagebuild.pods import podrestore

    repos = list(repos or [])
    podrestore.check_repos(repos, every)
    with _resolve(pod) as target:
        results, error = podrestore.restore(target, repos, every)
    if error is not None:
        raise UserError(f"pod {target.label} not restored: {error}")
    if json_out:
        print_json({"pod": target.label, "ok": all(r.ok for r in results),
                    "repos": [r.to_json() for r in results]})
    else:
        if not results:
            typer.echo("no git clones in the pod's /workspace: clone the repositories to their old paths")
        for r in results:
            typer.echo(f"{r.repo}: {r.verdict}")
            for line in r.output:
                typer.echo(f"  {line}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@pod_app.command("terminate")
def terminate(
    pod: str = POD_ARG,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(False, "--force", help=FORCE_SAVE_HELP),
    start_to_save: bool = typer.Option(
        False, "--start-to-save", help="A stopped pod: start it, save, then terminate."
    ),
    kill_jobs: bool = typer.Option(False, "--kill-jobs", help="Kill running jobs (`pod run`) "
                                   "first; without it a running job stops the terminate."),
    identity: str | None = IDENTITY_OPTION,
    budget: float = BUDGET_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Save the pod's work (pod-save), then delete the pod with its /workspace volume.

    Refused, with the pod and volume left as they are, unless everything is saved
    and no job runs.
    """
    from imagebuild.pods import lifecycle

    options = lifecycle.SaveOptions(identity=identity, budget=budget, ready_timeout=timeout,
                                    kill_jobs=kill_jobs)
    with _resolve(pod) as target, _interruptible(target):
        lifecycle.terminate(target, _ui(), options, force=force, start_to_save=start_to_save, yes=yes)
    volume = target.workspace_kept()
    if json_out:  # the pod as it was last seen, now gone
        print_json({**target.to_json(), "status": "terminated"})
        return
    kept = f"; network volume {volume} (its /workspace) is kept" if volume else ""
    typer.echo(f"pod {target.label} terminated{kept}")
