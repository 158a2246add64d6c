"""The save-before-stop/terminate rules of pods.lifecycle, on a fake Target: every
branch that could lose work or leave a pod billing, without Docker or RunPod
(tests/test_safe_terminate.py runs the same rules end to end on real pods)."""

from __future__ import annotations

import contextlib

import pytest

from imagebuild.errors import UserError
from imagebuild.pods import lifecycle
from imagebuild.pods.podsave import SaveResult
from imagebuild.pods.ssh import Endpoint

SAVED = SaveResult(report={"ok": True, "repos": []})
UNSAVED = SaveResult(report={"ok": False, "workspace": "/w", "repos": [
    {"path": "/w/proj", "status": "failed", "branches": [
        {"name": "main", "status": "failed", "ahead": 2, "reason": "push refused"}]}]})


class FakeTarget:
    """A pod that records what was done to it."""

    def __init__(self, status: str = "running", volume: str | None = None, fail_start: bool = False):
        self.status = status
        self.volume = volume
        self.fail_start = fail_start
        self.actions: list[str] = []
        self.label = self.ref = "fake"

    @property
    def state(self) -> str:
        return self.status

    def endpoint(self) -> Endpoint | None:
        return Endpoint("direct", "127.0.0.1", 22, "root") if self.status == "running" else None

    def ssh_options(self) -> list[str]:
        return []

    def workspace_kept(self) -> str | None:
        return self.volume

    def refresh(self) -> None:
        self.actions.append("refresh")

    def start(self, wait: bool, timeout: float, on_event) -> None:
        self.actions.append("start")
        self.status = "running"
        if self.fail_start:
            raise UserError("never got ready")

    def stop(self) -> None:
        self.actions.append("stop")
        self.status = "stopped"

    def terminate(self) -> None:
        self.actions.append("terminate")
        self.status = "terminated"


class FakeUi(lifecycle.Ui):
    def __init__(self, answer: bool = True, can_ask: bool = True):
        self.lines: list[str] = []
        self.reports: list[dict] = []
        self.questions: list[str] = []

        def confirm(question: str) -> bool:
            self.questions.append(question)
            return answer

        super().__init__(say=self.lines.append, show=self.reports.append, confirm=confirm,
                         can_ask=can_ask, busy=lambda _: contextlib.nullcontext(lambda _: None))


@pytest.fixture
def saves(monkeypatch):
    """pod-save's outcome, set per test; records each save that ran."""
    outcome = {"result": SAVED, "runs": 0}

    def fake_run(endpoint, **_):
        outcome["runs"] += 1
        return outcome["result"]

    monkeypatch.setattr(lifecycle.podsave, "run", fake_run)
    return outcome


OPTIONS = lifecycle.SaveOptions()


def test_terminate_without_a_terminal_refuses_before_anything(saves):
    target = FakeTarget()
    with pytest.raises(UserError, match="--yes") as error:
        lifecycle.terminate(target, FakeUi(can_ask=False), OPTIONS)
    assert error.value.exit_code == 2
    assert target.actions == [] and saves["runs"] == 0


def test_saved_pod_is_terminated_after_the_question(saves):
    target, ui = FakeTarget(), FakeUi()
    lifecycle.terminate(target, ui, OPTIONS)
    assert target.actions == ["terminate"] and saves["runs"] == 1
    assert ui.reports == [SAVED.report] and "Everything is saved" in ui.questions[0]


def test_no_to_the_question_keeps_the_pod(saves):
    target = FakeTarget()
    with pytest.raises(UserError, match="not terminated"):
        lifecycle.terminate(target, FakeUi(answer=False), OPTIONS)
    assert target.actions == []


def test_failed_save_keeps_the_pod_and_its_volume(saves):
    saves["result"] = UNSAVED
    target = FakeTarget()
    with pytest.raises(UserError, match="its volume is kept"):
        lifecycle.terminate(target, FakeUi(), OPTIONS, yes=True)
    assert target.actions == []


def test_force_says_what_is_lost_then_terminates(saves):
    saves["result"] = UNSAVED
    target, ui = FakeTarget(), FakeUi()
    lifecycle.terminate(target, ui, OPTIONS, force=True, yes=True)
    assert target.actions == ["terminate"]
    assert any("proj: branch main, 2 commit(s) (push refused)" in line for line in ui.lines)


def test_stopped_pod_is_refused_without_start_to_save(saves):
    target = FakeTarget(status="stopped")
    with pytest.raises(UserError, match="--start-to-save"):
        lifecycle.terminate(target, FakeUi(), OPTIONS, yes=True)
    assert target.actions == [] and saves["runs"] == 0


def test_started_to_save_and_the_save_fails_stops_it_again(saves):
    saves["result"] = UNSAVED
    target, ui = FakeTarget(status="stopped"), FakeUi()
    with pytest.raises(UserError, match="not terminated"):
        lifecycle.terminate(target, ui, OPTIONS, start_to_save=True, yes=True)
    assert target.actions == ["start", "refresh", "stop"]
    assert any("stopping pod fake again" in line for line in ui.lines)


def test_network_volume_pod_is_not_started_and_terminates_without_a_save(saves):
    target = FakeTarget(status="stopped", volume="vol-1")
    lifecycle.terminate(target, FakeUi(), OPTIONS, yes=True)
    assert target.actions == ["terminate"] and saves["runs"] == 0


def test_network_volume_failed_save_does_not_block(saves):
    saves["result"] = UNSAVED
    target, ui = FakeTarget(volume="vol-1"), FakeUi()
    lifecycle.terminate(target, ui, OPTIONS)
    assert target.actions == ["terminate"] and "network volume vol-1" in ui.questions[0]


def test_stop_with_save_first_refuses_on_a_failed_save_unless_forced(saves):
    saves["result"] = UNSAVED
    target = FakeTarget()
    with pytest.raises(UserError, match="not stopped"):
        lifecycle.stop(target, FakeUi(), OPTIONS, save_first=True)
    assert target.actions == []
    lifecycle.stop(target, FakeUi(), OPTIONS, save_first=True, force=True)
    assert target.actions == ["stop"]


def test_start_that_never_gets_ready_is_stopped_again(saves):
    target = FakeTarget(status="stopped", fail_start=True)
    with pytest.raises(UserError, match="never got ready"):
        lifecycle.start(target, FakeUi(), wait=True, timeout=1)
    assert target.actions == ["start", "refresh", "stop"] and target.status == "stopped"


def test_stop_again_never_raises_and_says_the_pod_may_bill():
    target, ui = FakeTarget(), FakeUi()

    def broken() -> None:
        raise RuntimeError("API down")

    target.refresh = broken
    target.stop = broken
    lifecycle.stop_again(target, ui.say, "a test")
    assert any("may still be billing" in line and "pod stop fake" in line for line in ui.lines)


RUNNING_JOB = SaveResult(report={"ok": True, "repos": [], "jobs": {"running": ["train"]}})


@pytest.mark.parametrize("volume", [None, "vol-1"])
def test_a_running_job_keeps_the_pod_even_with_force(saves, volume):
    saves["result"] = RUNNING_JOB
    target = FakeTarget(volume=volume)
    with pytest.raises(UserError, match="train still running.*--kill-jobs"):
        lifecycle.terminate(target, FakeUi(), OPTIONS, yes=True, force=True)
    assert target.actions == []


def test_kill_jobs_kills_them_before_the_save_then_terminates(saves, monkeypatch):
    from imagebuild.pods import jobs

    order: list[str] = []
    monkeypatch.setattr(jobs, "remote_for", lambda target, identity: "remote")
    monkeypatch.setattr(jobs, "call", lambda remote, *args: order.append(" ".join(args))
                        or [{"name": "train"}])

    def save_after_kill(endpoint, **_):
        order.append("save")
        return SAVED

    monkeypatch.setattr(lifecycle.podsave, "run", save_after_kill)
    target, ui = FakeTarget(), FakeUi()
    lifecycle.terminate(target, ui, lifecycle.SaveOptions(kill_jobs=True), yes=True)
    assert order == ["kill --all", "save"] and target.actions == ["terminate"]
    assert any("killed train" in line for line in ui.lines)
