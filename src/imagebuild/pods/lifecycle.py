"""Save before stop and terminate: the rules that keep a terminate from losing work.

A terminate deletes the pod's volume, so it goes ahead only after `pod-save`
(run on the pod over SSH) reported everything saved. A stopped pod cannot run
its save hooks: it is refused unless the caller starts it to save, or forces.
``force`` terminates anyway, after saying what is lost. A /workspace on a
network volume outlives the pod, so there a save is best effort and a stopped pod
is not started. A pod started here is stopped again if anything after fails
(``stop_on_failure``). An update resets a running pod, so it saves first too.
Without a terminal to confirm on, terminate and update refuse before they change
anything. The CLI passes in how to talk to the user (``Ui``);
everything else is decided here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from imagebuild.errors import UserError
from imagebuild.pods import podsave, savereport
from imagebuild.pods.podsave import SaveResult
from imagebuild.pods.targets import Target

T = TypeVar("T")

@dataclass
class Ui:
    say: Callable[[str], None]  # a progress or warning line (stderr)
    show: Callable[[dict], None]  # pod-save's report
    confirm: Callable[[str], bool]  # a yes/no question; False when nobody can answer
    can_ask: bool = True  # False without a terminal: refuse up front instead of asking
    # A spinner (or log lines) for a slow step: yields a function taking updates.
    busy: Callable[[str], AbstractContextManager[Callable[[str], None]]] = (
        lambda _: contextlib.nullcontext(lambda _: None))


@dataclass
class SaveOptions:
    identity: str | None = None
    budget: float = podsave.DEFAULT_BUDGET
    ready_timeout: float = 900.0  # for --start-to-save: until SSH answers
    kill_jobs: bool = False  # terminate, stop: kill running jobs (`pod run`) first, not refuse


def running_jobs(result: SaveResult | None) -> list[str]:
    """The jobs pod-save saw running (their output was still growing)."""
    report = result.report if result is not None else None
    return list(((report or {}).get("jobs") or {}).get("running") or [])


def _kill_jobs(target: Target, ui: Ui, options: SaveOptions) -> None:
    """--kill-jobs: end every running job before the save, so its output is final."""
    from imagebuild.pods import jobs

    killed = jobs.call(jobs.remote_for(target, options.identity), "kill", "--all")
    if killed:
        ui.say(f"imagebuild: --kill-jobs: killed {', '.join(job['name'] for job in killed)}")


def _refuse_running_jobs(target: Target, result: SaveResult | None) -> None:
    running = running_jobs(result)
    if running:
        raise UserError(f"pod {target.label} not terminated, its volume is kept: job(s) "
                        f"{', '.join(running)} still running; wait for them (imagebuild pod jobs "
                        f"{target.ref}), kill them (imagebuild pod kill), or add --kill-jobs")


def save(target: Target, options: SaveOptions, dry_run: bool = False) -> SaveResult:
    """pod-save on a running pod; a result with ``error`` when it cannot run."""
    endpoint = target.endpoint()
    if target.state != "running":
        return SaveResult(error=f"pod {target.label} is {target.status}: its save hooks cannot run")
    if endpoint is None:
        return SaveResult(error=f"pod {target.label} has no SSH endpoint to run pod-save on")
    return podsave.run(endpoint, options=target.ssh_options(), identity=options.identity,
                       budget=options.budget, dry_run=dry_run)


def _save_and_show(target: Target, ui: Ui, options: SaveOptions) -> SaveResult:
    with ui.busy(f"pod {target.label}: pod-save"):
        result = save(target, options)
    if result.report is not None:
        ui.show(result.report)
    return result


def _lost_lines(result: SaveResult | None, target: Target) -> list[str]:
    if result is not None and result.report is not None and result.error is None:
        return savereport.unsaved(result.report)
    why = result.error if result is not None else f"pod {target.label} is {target.status}"
    return [f"{why}: anything on its volume not pushed elsewhere "
            "(uncommitted work, unpushed commits, offline W&B runs)"]


@contextlib.contextmanager
def stop_on_failure(target: Target, say: Callable[[str], None], why: str) -> Iterator[None]:
    """A pod this command started is stopped again if anything after that fails
    (timeout, Ctrl-C, SIGTERM, a refused save, an error): it would bill for nothing."""
    try:
        yield
    except BaseException:
        stop_again(target, say, why)
        raise


def stop_again(target: Target, say: Callable[[str], None], why: str) -> None:
    """Stop a pod we started; never raises (the original failure is what matters)."""
    with contextlib.suppress(Exception):  # unreadable now: stop by what we last saw
        target.refresh()
    if target.state not in ("running", "starting"):
        return
    try:
        say(f"imagebuild: stopping pod {target.label} again ({why}); its volume is kept")
        target.stop()
    except Exception as error:  # noqa: BLE001 - reported, and the caller's error wins
        say(f"imagebuild: could not stop pod {target.label} ({error}); it may still be billing: "
            f"`imagebuild pod stop {target.ref}`")


def start(target: Target, ui: Ui, wait: bool, timeout: float) -> None:
    """`pod start`: with ``wait``, a pod that never gets ready is stopped again."""
    with ui.busy(f"pod {target.label}") as report:
        if not wait:
            target.start(False, timeout, report)
            return
        with stop_on_failure(target, ui.say, "it did not get ready"):
            target.start(True, timeout, report)


def terminate(target: Target, ui: Ui, options: SaveOptions, *, force: bool = False,
              start_to_save: bool = False, yes: bool = False) -> None:
    """Save, then terminate; raises UserError (pod and volume left) when not saved."""
    if not yes and not ui.can_ask:
        raise UserError(f"pod {target.label} not terminated: terminate asks for confirmation and "
                        "stdin is not a terminal; add --yes to confirm", exit_code=2)
    if target.workspace_kept():
        return _terminate_keeping_workspace(target, ui, options, yes=yes)
    if target.state == "stopped" and start_to_save:
        ui.say(f"imagebuild: starting pod {target.label} to run its save hooks")
        with stop_on_failure(target, ui.say, "it was started only to save"):
            with ui.busy(f"pod {target.label}") as report:
                target.start(True, options.ready_timeout, report)
            _save_confirm_terminate(target, ui, options, force=force, yes=yes)
        return
    if target.state != "running" and not force:
        hint = (f"`imagebuild pod terminate {target.ref} --start-to-save` starts it to save first"
                if target.state == "stopped" else "wait until it runs")
        raise UserError(f"pod {target.label} is {target.status}: its save hooks cannot run, so it was "
                        f"not terminated; {hint}, or --force terminates it without saving")
    _save_confirm_terminate(target, ui, options, force=force, yes=yes)


def _save_confirm_terminate(target: Target, ui: Ui, options: SaveOptions, *, force: bool,
                            yes: bool) -> None:
    if options.kill_jobs and target.state == "running":
        _kill_jobs(target, ui, options)
    result = _save_and_show(target, ui, options) if target.state == "running" else None
    _refuse_running_jobs(target, result)
    if result is None or not result.ok:
        lost = _lost_lines(result, target)
        if not force:
            why = result.error if result and result.error else "not everything is saved (see above)"
            raise UserError(f"pod {target.label} not terminated, its volume is kept: {why}; fix it "
                            f"and retry, or add --force to terminate and lose it")
        ui.say(f"imagebuild: --force: terminating pod {target.label} loses:")
        for line in lost:
            ui.say(f"  - {line}")
        question = f"Terminate pod {target.label} and lose the above?"
    else:
        question = f"Everything is saved. Terminate pod {target.label}? Its /workspace volume is deleted."
    if not yes and not ui.confirm(question):
        raise UserError(f"pod {target.label} not terminated")
    target.terminate()


def _terminate_keeping_workspace(target: Target, ui: Ui, options: SaveOptions, *, yes: bool) -> None:
    """/workspace is a network volume that outlives the pod: nothing there is lost,
    so a stopped pod is not started to save and a failing save does not block."""
    volume = target.workspace_kept()
    if target.state == "running":
        if options.kill_jobs:
            _kill_jobs(target, ui, options)
        result = _save_and_show(target, ui, options)
        _refuse_running_jobs(target, result)
        if not result.ok:
            ui.say(f"imagebuild: not everything was pushed ({result.error or 'see above'}); it stays "
                   f"on network volume {volume}")
    question = f"Terminate pod {target.label}? /workspace stays on network volume {volume}."
    if not yes and not ui.confirm(question):
        raise UserError(f"pod {target.label} not terminated")
    target.terminate()


def _saved_or_forced(target: Target, ui: Ui, options: SaveOptions, force: bool,
                     refused: tuple[str, str], going: str) -> None:
    """pod-save first: a failed save refuses the step (``refused``: what did not happen,
    and what --force does), unless ``force``, which says what goes ahead anyway."""
    result = _save_and_show(target, ui, options)
    if result.ok:
        return
    why = result.error or "not everything is saved (see above)"
    if not force:
        raise UserError(f"pod {target.label} not {refused[0]}: {why}; fix it and retry, or add "
                        f"--force to {refused[1]}")
    ui.say(f"imagebuild: --force: {going} pod {target.label} although {why}")


def _jobs_before_stop(target: Target, ui: Ui, options: SaveOptions, force: bool) -> None:
    """A stop ends every running job (`pod jobs` shows them lost after): kill them with
    --kill-jobs, say so with --force, else ask, and refuse without a terminal to ask on."""
    from imagebuild.pods import jobs

    try:
        remote = jobs.remote_for(target, options.identity)
        if options.kill_jobs:
            return _kill_jobs(target, ui, options)
        running = [job["name"] for job in jobs.call(remote, "list") if job["state"] == "running"]
    except UserError as error:  # never keep a pod billing because its jobs cannot be listed
        ui.say(f"imagebuild: could not reach the jobs on pod {target.label} ({error}); stopping")
        return None
    if not running:
        return None
    what = (f"job(s) {', '.join(running)} still running on pod {target.label}: a stop ends them "
            "(their logs stay in /workspace)")
    if force:
        return ui.say(f"imagebuild: --force: {what}")
    if not ui.can_ask:
        raise UserError(f"pod {target.label} not stopped: {what}; wait for them (imagebuild pod jobs "
                        f"{target.ref}), or add --kill-jobs to end them first (--force: stop anyway)")
    ui.say(f"imagebuild: {what}")
    if not ui.confirm(f"Stop pod {target.label} and end job(s) {', '.join(running)}?"):
        raise UserError(f"pod {target.label} not stopped; job(s) {', '.join(running)} keep running")
    return None


def stop(target: Target, ui: Ui, options: SaveOptions, *, save_first: bool = False,
         force: bool = False) -> None:
    """Stop (the volume is kept); with ``save_first`` only once pod-save succeeded;
    running jobs are said first (``_jobs_before_stop``)."""
    if target.state == "running":
        _jobs_before_stop(target, ui, options, force)
    if save_first:
        if target.state != "running":
            raise UserError(f"pod {target.label} is {target.status}: --save needs a running pod")
        _saved_or_forced(target, ui, options, force, ("stopped", "stop anyway (the volume is kept)"),
                         "stopping")
    target.stop()


def update(target: Target, ui: Ui, options: SaveOptions, apply: Callable[[], T], *,
           force: bool = False, yes: bool = False) -> T:
    """``apply`` a change RunPod makes by resetting a running pod (updatePod: a new
    container, the running job and everything outside /workspace gone). A running
    pod is saved first (refused when the save fails, unless ``force``) and the
    restart confirmed; any other pod is changed as it is (a stopped one stays so)."""
    if target.state != "running":
        return apply()
    restart = (f"pod {target.label} is running: RunPod restarts the pod now to apply this (a new "
               "container: the running job and everything outside /workspace are lost)")
    if not yes and not ui.can_ask:
        raise UserError(f"{restart}; not updated: stdin is not a terminal to confirm on, add --yes",
                        exit_code=2)
    ui.say(f"imagebuild: {restart}; running pod-save first")
    _saved_or_forced(target, ui, options, force, ("updated", "restart it anyway"), "restarting")
    if not yes and not ui.confirm(f"Restart pod {target.label} now with the change?"):
        raise UserError(f"pod {target.label} not updated")
    return apply()
