"""`imagebuild pod save/stop/terminate` end to end: terminating a pod never loses work.

Real pods (containers of the test image, their sshd, their /workspace volume), real
git remotes (bare repositories on the host behind `git daemon`, which outlive a
terminated pod), the real CLI in a subprocess, and the fake RunPod API with pods
backed by such containers. Each scenario checks what exists afterwards on the
remote and in the volume; the ledger counts every commit and file the scenarios
made, and none may be lost (on neither the remote nor the pod's volume).

Most scenarios share one local pod, its workspace emptied in between; the
terminate paths get a fresh pod each, as ``local:NAME`` and as a RunPod pod.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time

import pytest
from conftest import unique_name
from fake_runpod import ContainerBackend, FakeRunPod
from safe_terminate_helpers import Box, Ledger, Remotes, git
from ssh_helpers import SshHome, make_ssh_home

pytestmark = pytest.mark.docker

WANDB_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"  # fake, 40 hex like W&B's
# Every pod gets these: short pod-save timeouts, and a W&B that is not there.
POD_ENV = {
    "POD_SAVE_HOOK_TIMEOUT": "2",
    "POD_SAVE_WANDB_TIMEOUT": "5",
    "POD_SAVE_GIT_TIMEOUT": "20",
    "WANDB_BASE_URL": "http://127.0.0.1:9",
    "WANDB_API_KEY": WANDB_KEY,
}
AUTOSAVE = "refs/heads/autosave/"


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ssh_home(tmp_path_factory) -> SshHome:
    return make_ssh_home(tmp_path_factory.mktemp("safe-terminate"))


@pytest.fixture(scope="module")
def remotes(engine, tmp_path_factory):
    # Where containers on the default bridge reach the host: its gateway address
    # (docker 20.10 often leaves "Gateway" out: it is the subnet's first address).
    config = engine.client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    gateway = config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    served = Remotes(tmp_path_factory.mktemp("remotes"), gateway)
    yield served
    served.close()


@pytest.fixture(scope="module")
def ledger(remotes):
    book = Ledger(remotes)
    yield book
    book.settle()
    assert book.lost == [], f"{len(book.lost)} of {book.checked} commits/files lost: {book.lost}"
    assert book.checked > 0


@pytest.fixture(scope="module")
def fake(engine, pod_image, ssh_home):
    with FakeRunPod(backend=ContainerBackend(engine, POD_ENV)) as server:
        yield server
    assert server.mismatches == [], server.mismatches


@pytest.fixture(scope="module")
def cli(fake, ssh_home, tmp_path_factory):
    """The real CLI in a subprocess (``PodCli``: no API key, no traceback in any
    output); no run may show the W&B key either."""
    # Imported here: importing the plugin module at collection time keeps pytest
    # from rewriting its asserts where test_runpod_*.py load it as a plugin.
    from fake_runpod.fixtures import PodCli

    runner = PodCli(fake, ssh_home.home, tmp_path_factory.mktemp("project"))
    runner.env["PATH"] = f"{ssh_home.bin}:{runner.env['PATH']}"
    runner.env["COLUMNS"] = "250"  # the report table on one line per row

    def run(*args: str, **kwargs):
        result = runner(*args, **kwargs)
        assert WANDB_KEY not in result.output, f"W&B key leaked by {args}:\n{result.output}"
        return result

    return run


def _box(ref: str, pod_id: str, container: str, volume: str, image: str, ssh_home: SshHome) -> Box:
    return Box(ref, pod_id, container, volume, image, ssh_home.key, ssh_home.known_hosts)


def _local_pod(engine, image: str, ssh_home: SshHome) -> Box:
    from imagebuild.pods import localrun

    name = unique_name("ibsave")
    env = {**localrun.runpod_env(name), **POD_ENV, "PUBLIC_KEY": ssh_home.public_key}
    pod = localrun.start(engine, name, image, env)
    return _box(f"local:{name}", name, pod.container, pod.volume, image, ssh_home)


@pytest.fixture(scope="module")
def shared_pod(engine, pod_image, ssh_home):
    from imagebuild.pods import localrun

    pod = _local_pod(engine, pod_image, ssh_home)
    yield pod
    pod.reset()  # nothing left for the stop hooks' pod-save to chew on
    localrun.remove(engine, pod.ref.removeprefix("local:"), volume=True)


@pytest.fixture
def pod(shared_pod, engine) -> Box:
    """The shared local pod, running, with an empty workspace."""
    from imagebuild.pods import localrun

    if not shared_pod.running():
        localrun.start(engine, shared_pod.pod_id, shared_pod.image, {})
    shared_pod.reset()
    return shared_pod


@pytest.fixture
def new_pod(engine, pod_image, ssh_home, cli, fake):
    """A fresh pod to terminate: make("local") or make("runpod")."""
    from imagebuild.pods import localrun

    made: list[Box] = []

    def make(kind: str) -> Box:
        if kind == "local":
            made.append(_local_pod(engine, pod_image, ssh_home))
        else:
            name = unique_name("rp")
            result = cli("pod", "create", "--image", pod_image, "--gpu", "4090", "--name", name,
                         "--public-key", ssh_home.public_key.strip(), "--timeout", "120")
            assert result.code == 0, result.output
            [pod_id] = [p.id for p in fake.pods.values() if p.request["name"] == name]
            local = ContainerBackend.name(pod_id)
            made.append(_box(name, pod_id, f"imagebuild-{local}", f"imagebuild-{local}-workspace",
                             pod_image, ssh_home))
        made[-1].in_workspace("mkdir -p /workspace/code")
        return made[-1]

    yield make
    for pod in made:
        localrun.remove(engine, pod.name.removeprefix("imagebuild-"), volume=True)


def report_of(result) -> dict:
    return json.loads(result.stdout)


def autosaves(remotes: Remotes, name: str) -> dict[str, str]:
    return {ref: sha for ref, sha in remotes.refs(name).items() if ref.startswith(AUTOSAVE)}


# -- what pod save saves (the shared local pod) ----------------------------------------


def test_clean_repo_saves_nothing_and_is_ok(cli, pod, remotes, ledger):
    url = remotes.bare("clean")
    ledger.commit(pod, "clean", "clean", pod.repo("clean", url))
    before = remotes.refs("clean")

    result = cli("pod", "save", pod.ref, "--json")

    assert result.code == 0, result.output
    report = report_of(result)
    assert report["ok"] is True and report["pod_id"] == pod.pod_id
    [repo] = report["repos"]
    assert (repo["path"], repo["status"], repo["snapshot"]) == ("/workspace/code/clean", "clean", None)
    assert remotes.refs("clean") == before
    assert ledger.settle() == []


def test_branch_ahead_is_pushed_and_dry_run_pushes_nothing(cli, pod, remotes, ledger):
    url = remotes.bare("ahead")
    first = pod.repo("ahead", url)
    tips = [ledger.commit(pod, "ahead", "ahead", pod.commit("ahead", f"step{n}.py")) for n in (1, 2)]

    dry = cli("pod", "save", pod.ref, "--dry-run", "--json")
    assert dry.code == 0, dry.output
    assert report_of(dry)["repos"][0]["branches"][0]["status"] == "pending"
    assert remotes.refs("ahead")["refs/heads/main"] == first

    result = cli("pod", "save", pod.ref)

    assert result.code == 0, result.output
    assert "branch main" in result.stdout and "pushed" in result.stdout and "2 commit(s)" in result.stdout
    assert "everything is saved" in result.stdout
    assert remotes.refs("ahead")["refs/heads/main"] == tips[-1]
    assert autosaves(remotes, "ahead") == {}
    assert ledger.settle() == []


def test_uncommitted_and_untracked_work_lands_on_a_snapshot_branch(cli, pod, remotes, ledger):
    url = remotes.bare("dirty")
    head = pod.repo("dirty", url)
    pod.write("dirty", "README.md", "# changed, not staged\n")
    pod.write("dirty", "staged.py", "print('staged')\n")
    pod.git("dirty", "add", "staged.py")
    pod.write("dirty", "notes/deep/idea.md", "untracked idea\n")
    for rel, content in (("README.md", "# changed, not staged\n"), ("staged.py", "print('staged')\n"),
                         ("notes/deep/idea.md", "untracked idea\n")):
        ledger.file(pod, "dirty", "dirty", rel, content)
    before = pod.tree_state("dirty")

    result = cli("pod", "save", pod.ref, "--json")

    assert result.code == 0, result.output
    snap = report_of(result)["repos"][0]["snapshot"]
    assert (snap["status"], snap["files"]) == ("pushed", 3)
    [(ref, sha)] = autosaves(remotes, "dirty").items()
    assert ref == snap["ref"] and ref.startswith(f"{AUTOSAVE}{pod.pod_id}/")
    assert remotes.show("dirty", ref, "notes/deep/idea.md") == "untracked idea"
    assert git(remotes.path("dirty"), "rev-parse", f"{sha}^") == head  # on top of HEAD
    assert remotes.refs("dirty")["refs/heads/main"] == head  # the branch itself untouched
    assert pod.tree_state("dirty") == before  # index, HEAD, branches, files
    assert ledger.settle() == []


# -- what makes terminate refuse (the shared local pod) ---------------------------------


def assert_refused(result, pod: Box, *expected: str) -> None:
    assert result.code == 1, result.output
    assert f"pod {pod.ref} not terminated" in result.stderr, result.stderr
    for text in expected:
        assert text in result.output, result.output
    assert pod.running() and pod.volume_exists()


def test_diverged_branch_is_saved_beside_the_remote_branch(cli, pod, remotes, ledger, tmp_path):
    url = remotes.bare("diverged")
    pod.repo("diverged", url)
    # Someone else pushed meanwhile: the pod's main is no longer a fast-forward.
    clone = tmp_path / "elsewhere"
    git(tmp_path, "clone", "-q", str(remotes.path("diverged")), str(clone))
    (clone / "other.py").write_text("theirs\n")
    git(clone, "add", "other.py")
    git(clone, "commit", "-qm", "theirs")
    git(clone, "push", "-q")
    theirs = remotes.refs("diverged")["refs/heads/main"]
    mine = ledger.commit(pod, "diverged", "diverged", pod.commit("diverged", "mine.py"))

    result = cli("pod", "save", pod.ref)

    assert result.code == 0, result.output
    assert "diverged" in result.output and "-branch-main" in result.output
    refs = remotes.refs("diverged")
    assert refs["refs/heads/main"] == theirs  # nothing forced
    assert [r for r, sha in refs.items() if sha == mine and "/autosave/" in r]
    assert ledger.settle() == []


def test_results_only_on_the_volume_refuse_terminate_until_rclone_saves_them(cli, pod):
    pod.in_workspace("mkdir -p results/run1 && head -c 3000 /dev/urandom > results/run1/metrics.bin")
    try:
        result = cli("pod", "terminate", pod.ref, "--yes")
        assert_refused(result, pod, "results", "2.9 KB")
        # The image's rclone, to a folder standing in for a bucket.
        pod.in_workspace("printf '[[sync]]\\npath = \"results\"\\nremote = \"/tmp/bucket\"\\n' "
                   "> .pod/save.toml")
        result = cli("pod", "save", pod.ref, "--json")
        assert result.code == 0, result.output
        assert report_of(result)["sync"][0]["status"] == "synced"
        assert pod.in_workspace("cmp results/run1/metrics.bin /tmp/bucket/run1/metrics.bin && echo same") \
            == "same"
    finally:
        pod.in_workspace("rm -rf results/* .pod/save.toml /tmp/bucket")


def test_repo_without_remote_refuses_terminate(cli, pod, ledger):
    pod.repo("scratch")
    ledger.commit(pod, "scratch", None, pod.commit("scratch", "sketch.py"))
    pod.write("scratch", "todo.txt", "only here\n")
    ledger.file(pod, "scratch", None, "todo.txt", "only here\n")

    result = cli("pod", "terminate", pod.ref, "--yes")

    assert_refused(result, pod, "no git remote")
    assert ledger.settle() == []


def test_offline_wandb_run_without_a_server_refuses_terminate(cli, pod):
    # A real offline run (wandb from the image's venv); W&B is a closed port.
    pod.in_workspace("WANDB_DIR=/workspace WANDB_MODE=offline WANDB_SILENT=true /opt/venv/bin/python -c "
               "\"import wandb; r = wandb.init(project='p'); r.log({'loss': 1.0}); r.finish()\"")
    [run_dir] = pod.in_workspace("ls -d /workspace/wandb/offline-run-*").split()

    result = cli("pod", "terminate", pod.ref, "--yes")

    # The image's renderer (host and pod alike): the run under "wandb", marked FAILED.
    assert_refused(result, pod, f"\nwandb\n  FAILED     {run_dir.removeprefix('/workspace/')}",
                   "W&B server unreachable")
    assert pod.in_workspace(f"ls {run_dir}/*.wandb")  # the run is still on the volume


# Binds port 22 once sshd has let go of it, then accepts nothing and says nothing.
SILENT_SSHD = """
import os, socket, time
for _ in range(100):
    try:
        server = socket.create_server(("0.0.0.0", 22))
        break
    except OSError:
        time.sleep(0.05)
server.listen(16)
open("/run/silent.pid", "w").write(str(os.getpid()))
time.sleep(600)
"""


def test_ssh_unreachable_refuses_terminate_within_the_connect_timeout(cli, pod, remotes, ledger):
    url = remotes.bare("nossh")
    pod.repo("nossh", url)
    ledger.commit(pod, "nossh", "nossh", pod.commit("nossh", "work.py"))
    # sshd replaced by a listener that never answers: ssh connects, then hears nothing.
    pod.in_workspace("kill $(cat /run/sshd.pid)")
    subprocess.run(["docker", "exec", "-d", pod.name, "python3", "-c", SILENT_SSHD], check=True)
    try:
        pod.in_workspace("for _ in $(seq 50); do [ -e /run/silent.pid ] && break; sleep 0.1; done")
        started = time.monotonic()
        result = cli("pod", "terminate", pod.ref, "--yes", env={"IMAGEBUILD_SSH_CONNECT_TIMEOUT": "3"})
        took = time.monotonic() - started
        assert_refused(result, pod, "cannot reach the pod over SSH")
        assert took < 20, took
        assert ledger.settle() == []  # the commit is still in the volume
    finally:
        pod.in_workspace("kill $(cat /run/silent.pid); rm -f /run/silent.pid; sleep 0.2; "
                   "/usr/sbin/sshd -E /workspace/.pod/logs/sshd.log")
    assert cli("pod", "save", pod.ref).code == 0  # sshd back: saved now


def test_gateway_style_session_is_parsed(pod, remotes, ledger, ssh_home):
    """RunPod's gateway: a PTY, the command fed on stdin, echo, banner and prompts in
    the output. The pod's real sshd, driven that way, must give the same report."""
    from imagebuild.pods import podsave
    from imagebuild.pods.ssh import Endpoint

    url = remotes.bare("gateway")
    pod.repo("gateway", url)
    ledger.commit(pod, "gateway", "gateway", pod.commit("gateway", "g.py"))

    result = podsave.run(Endpoint("proxy", "127.0.0.1", pod.port, "root"), budget=60, ssh=str(ssh_home.ssh),
                         options=["-o", f"HostKeyAlias={pod.name}"])

    assert result.error is None and result.ok, result
    assert result.report["repos"][0]["branches"][0]["status"] == "pushed"
    assert ledger.settle() == []


def test_stop_with_save_refuses_until_saved(cli, pod, remotes, ledger):
    pod.repo("stopme")
    ledger.commit(pod, "stopme", None, pod.commit("stopme", "a.py"))

    refused = cli("pod", "stop", pod.ref, "--save")
    assert refused.code == 1 and "not stopped" in refused.stderr and "no git remote" in refused.output
    assert pod.running()

    pod.git("stopme", "remote", "add", "origin", remotes.bare("stopme"))
    ledger.items[-1].remote = "stopme"
    stopped = cli("pod", "stop", pod.ref, "--save")
    assert stopped.code == 0, stopped.output
    assert "everything is saved" in stopped.stdout and "stopped" in stopped.stdout
    assert not pod.running() and pod.volume_exists()
    assert json.loads(cli("pod", "status", pod.ref, "--json").stdout)["status"] == "stopped"
    assert ledger.settle() == []


def test_local_pod_start_status_and_ssh(cli, pod, engine):
    from imagebuild.pods import localrun

    localrun.stop(engine, pod.pod_id)
    started = cli("pod", "start", pod.ref)
    assert started.code == 0 and f"pod {pod.ref} ready" in started.stdout, started.output
    status = cli("pod", "status", pod.ref)
    assert status.code == 0 and "status   running" in status.stdout
    ran = cli("pod", "ssh", pod.ref, "--", "echo", "$RUNPOD_POD_ID", "&&", "test -e /run/pod-ready")
    assert (ran.code, ran.stdout.strip()) == (0, pod.pod_id), ran.output


# -- terminate: local pods and RunPod pods ---------------------------------------------

KINDS = ["local", "runpod"]


@pytest.mark.parametrize("kind", KINDS)
def test_saved_pod_is_terminated(cli, new_pod, remotes, ledger, fake, kind):
    pod = new_pod(kind)
    name = f"done-{kind}"
    pod.repo("proj", remotes.bare(name))
    tip = ledger.commit(pod, "proj", name, pod.commit("proj", "train.py"))
    pod.write("proj", "notes.md", "unfinished idea\n")
    ledger.file(pod, "proj", name, "notes.md", "unfinished idea\n")

    result = cli("pod", "terminate", pod.ref, "--yes")

    assert result.code == 0, result.output
    assert "everything is saved" in result.stdout and "terminated" in result.stdout
    assert pod.gone()
    assert remotes.refs(name)["refs/heads/main"] == tip
    [snapshot] = autosaves(remotes, name)
    assert snapshot.startswith(f"{AUTOSAVE}{pod.pod_id}/")
    assert remotes.show(name, snapshot, "notes.md") == "unfinished idea"
    if kind == "runpod":
        assert pod.pod_id not in fake.pods
    assert ledger.settle() == []


@pytest.mark.parametrize("kind", KINDS)
def test_failing_save_refuses_and_force_terminates_saying_what_is_lost(cli, new_pod, remotes, ledger, fake, kind):
    pod = new_pod(kind)
    name = f"force-{kind}"
    pod.repo("proj", remotes.bare(name))
    tip = ledger.commit(pod, "proj", name, pod.commit("proj", "kept.py"))
    pod.repo("scratch")  # no remote: cannot be saved
    pod.commit("scratch", "lost.py")

    refused = cli("pod", "terminate", pod.ref, "--yes")

    assert refused.code == 1 and "not terminated" in refused.stderr, refused.output
    assert "code/scratch" in refused.stdout and "no git remote" in refused.stdout
    assert pod.running() and pod.in_workspace("ls code/scratch/lost.py")
    if kind == "runpod":
        assert fake.pods[pod.pod_id].status == "RUNNING"
        assert fake.calls("DELETE", f"/v2/pods/{pod.pod_id}") == []
    assert remotes.refs(name)["refs/heads/main"] == tip  # what could be saved, was

    forced = cli("pod", "terminate", pod.ref, "--yes", "--force")

    assert forced.code == 0, forced.output
    assert "--force: terminating pod" in forced.stderr and "code/scratch: branch main" in forced.stderr
    assert "terminated" in forced.stdout and pod.gone()
    # Only the items --force named are gone (by request); the ledger holds the rest.
    assert ledger.settle() == []


@pytest.mark.parametrize("kind", KINDS)
def test_stopped_pod_is_refused_and_start_to_save_terminates_it(cli, new_pod, remotes, ledger, fake, kind):
    pod = new_pod(kind)
    name = f"stopped-{kind}"
    pod.repo("proj", remotes.bare(name))
    assert cli("pod", "stop", pod.ref).code == 0
    assert not pod.running()
    # Work the pod's stop hooks never saw: only a save after a start can push it.
    tip = ledger.commit(pod, "proj", name, pod.commit("proj", "late.py"))

    refused = cli("pod", "terminate", pod.ref, "--yes")

    assert refused.code == 1 and "--start-to-save" in refused.stderr, refused.output
    assert not pod.running() and pod.volume_exists()
    if kind == "runpod":
        assert fake.pods[pod.pod_id].status == "EXITED"
    assert ledger.settle() == []

    done = cli("pod", "terminate", pod.ref, "--yes", "--start-to-save")

    assert done.code == 0, done.output
    assert "everything is saved" in done.stdout and pod.gone()
    assert remotes.refs(name)["refs/heads/main"] == tip
    assert ledger.settle() == []


@pytest.mark.parametrize("kind", KINDS)
def test_pod_status_shows_the_last_save_and_what_is_unsaved(cli, new_pod, remotes, ledger, kind):
    pod = new_pod(kind)
    name = f"status-{kind}"
    before = json.loads(cli("pod", "status", pod.ref, "--json").stdout)["save"]
    assert before is not None and before["last_save"] is None, before
    pod.repo("proj", remotes.bare(name))
    pod.write("proj", "notes.md", "unfinished idea\n")
    ledger.file(pod, "proj", name, "notes.md", "unfinished idea\n")
    assert cli("pod", "save", pod.ref).code == 0

    shown = json.loads(cli("pod", "status", pod.ref, "--json").stdout)["save"]
    assert (shown["verdict"], shown["mode"], shown["unsaved_files"]) == ("saved", "manual", 0)
    human = cli("pod", "status", pod.ref)
    assert human.code == 0 and "save     last " in human.stdout, human.output
    assert "manual): saved" in human.stdout and "unsaved  nothing" in human.stdout
    assert ledger.settle() == []
