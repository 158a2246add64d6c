"""CLI: `imagebuild pod run/jobs/tail/kill` - long jobs on a pod, in tmux sessions
that outlive the SSH connection (RunPod's gateway included).

The logic lives in ``imagebuild.pods.jobs`` (and ``pods.codesync`` for --sync).
"""

from __future__ import annotations

import json
import sys
import time

import typer

from imagebuild import contract
from imagebuild.cli.common import JSON_OPTION, print_json
from imagebuild.cli.pod import IDENTITY_OPTION, POD_ARG, _resolve, _say, pod_app
from imagebuild.errors import UserError

JOB_ARG = typer.Argument(..., metavar="JOB", help="The job's name (see `imagebuild pod jobs POD`).")
RUN_COMMAND_ARG = typer.Argument(..., metavar="-- CMD...", help="The command to run on the pod.")


def _remote(pod: str, identity: str | None):
    from imagebuild.pods import jobs

    with _resolve(pod) as target:
        return jobs.remote_for(target, identity), target.ref


def _default_name(command: list[str]) -> str:
    import re

    word = re.sub(r"[^A-Za-z0-9._-]", "-", command[0].rsplit("/", 1)[-1]).strip("-.") or "job"
    return f"{word[:40]}-{time.strftime('%H%M%S')}"


def _tail_hint(ref: str, name: str) -> str:
    return f"imagebuild pod tail {ref} {name} -f"


@pod_app.command("run")
def run(
    pod: str = POD_ARG,
    command: list[str] = RUN_COMMAND_ARG,
    detach: bool = typer.Option(False, "--detach", "-d", help="Start it and return; follow later "
                                "with `pod tail`."),
    name: str | None = typer.Option(None, "--name", help="The job's name (default: the command's "
                                    "name and the time). One running job per name."),
    project: str | None = typer.Option(None, "--project", "-p", help="Run in this project under "
                                       f"{contract.CODE_DIR}, its venv active (the pod's `proj P`)."),
    user: str = typer.Option("root", "--user", help="Run as root or dev (claude's user)."),
    # A flag, not an option taking DIR: `--sync -- CMD` must never read `--` as the folder.
    sync: bool = typer.Option(False, "--sync", help=(
        "First mirror the current git repository into "
        f"{contract.CODE_DIR}/<repo> and run there: tracked and untracked-not-ignored files, "
        "deletions too; refused if it would overwrite changes made on the pod.")),
    sync_dir: str | None = typer.Option(None, "--sync-dir", metavar="DIR", help=(
        "--sync the git repository DIR is in instead of the current one (implies --sync).")),
    identity: str | None = IDENTITY_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Run CMD on the pod in a tmux session of its own, output to
    /workspace/results/logs/JOB.log. Without --detach the output streams here and
    the exit code is the job's; Ctrl-C or a dropped connection leaves it running."""
    from imagebuild.pods import jobs

    if user not in jobs.USERS:
        raise UserError(f"--user: expected root or dev, got {user!r}", 2)
    name = name or _default_name(command)
    remote, ref = _remote(pod, identity)
    cwd = None
    if sync or sync_dir is not None:
        from imagebuild.pods import codesync

        synced = codesync.sync(remote, sync_dir)
        cwd = synced["dest"]
        _say(f"imagebuild: synced into {cwd}: {synced['copied']} file(s) copied, "
             f"{synced['deleted']} deleted, {synced['unchanged']} unchanged")
    start = jobs.start_args(name, command, user=user, project=project, cwd=cwd)
    if detach:
        job = jobs.call(remote, *start)
        if json_out:
            print_json(job)
        else:
            typer.echo(f"job {name} started on pod {remote.label}: log {job['log']}; follow: "
                       f"{_tail_hint(ref, name)}")
        return
    out = sys.stderr.buffer if json_out else sys.stdout.buffer
    try:
        done = jobs.follow(remote, name, _writer(out), lines=0, start=start)
    except KeyboardInterrupt:
        raise UserError(f"detached from job {name}: it keeps running on pod {remote.label}; "
                        f"follow it: {_tail_hint(ref, name)}", 130) from None
    if done.job is None:
        raise UserError(f"the connection to pod {remote.label} dropped; job {name} keeps running: "
                        f"{_tail_hint(ref, name)}", 1)
    _finish(done.job, json_out)


def _writer(out):
    def write(chunk: bytes) -> None:
        out.write(chunk)
        out.flush()
    return write


def _finish(job: dict, json_out: bool) -> None:
    """The job's JSON with --json; the job's exit code either way."""
    if json_out:
        print_json(job)
    if job["state"] in ("running", "starting"):
        return
    code = job.get("exit_code")
    if job["state"] == "lost":
        _say(f"imagebuild: job {job['name']} was lost (the pod restarted while it ran)")
        raise typer.Exit(1)
    raise typer.Exit(code if isinstance(code, int) else 1)


@pod_app.command("jobs")
def jobs_(pod: str = POD_ARG, identity: str | None = IDENTITY_OPTION,
          json_out: bool = JSON_OPTION) -> None:
    """List the pod's jobs: running, exited (code), killed, or lost after a restart."""
    from imagebuild.pods import jobs

    remote, _ = _remote(pod, identity)
    found = jobs.call(remote, "list")
    if json_out:
        print_json(found)
        return
    if not found:
        typer.echo(f"no jobs on pod {remote.label}; start one: imagebuild pod run {pod} -- CMD")
        return
    for line in jobs.table(found):
        typer.echo(line)


@pod_app.command("tail")
def tail(
    pod: str = POD_ARG,
    job: str = JOB_ARG,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep following until the job ends "
                                "(reconnects when the stream drops)."),
    lines: int = typer.Option(20, "--lines", "-n", min=0, max=100000, help="Earlier lines first."),
    identity: str | None = IDENTITY_OPTION,
    json_out: bool = typer.Option(False, "--json", help="One JSON object per log line, then the job."),
) -> None:
    """Show a job's log; -f follows it while the job runs."""
    from imagebuild.pods import jobs

    remote, _ = _remote(pod, identity)
    write = _json_lines() if json_out else _writer(sys.stdout.buffer)
    try:
        done = jobs.follow_reconnecting(remote, job, write, lines=lines, follow_log=follow, say=_say)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        write(b"")  # a last line without a newline (--json)
    if done.job is None:
        raise UserError(f"lost the stream from pod {remote.label}; the job keeps running", 1)
    if json_out:
        typer.echo(json.dumps({"job": done.job}))


def _json_lines():
    """Log bytes to one {"line": ...} per line; b"" ends (a last line without a newline)."""
    pending = bytearray()

    def echo(line: bytes) -> None:
        typer.echo(json.dumps({"line": line.decode("utf-8", "replace")}))

    def write(chunk: bytes) -> None:
        if not chunk:
            if pending:
                echo(bytes(pending))
            pending.clear()
            return
        pending.extend(chunk)
        *full, rest = bytes(pending).split(b"\n")
        for line in full:
            echo(line)
        pending[:] = rest
    return write


@pod_app.command("kill")
def kill(pod: str = POD_ARG, job: str = JOB_ARG, identity: str | None = IDENTITY_OPTION,
         json_out: bool = JSON_OPTION) -> None:
    """Stop a job: its process group (TERM, then KILL), then its tmux session."""
    from imagebuild.pods import jobs

    remote, _ = _remote(pod, identity)
    [killed] = jobs.call(remote, "kill", job)
    if json_out:
        print_json(killed)
    else:
        typer.echo(f"job {job} killed on pod {remote.label}; its log: {killed['log']}")
