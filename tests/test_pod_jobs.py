"""`imagebuild pod run/jobs/tail/kill` end to end: the real CLI in a subprocess, a
real pod (a container of the test image, its sshd, tmux and volume), reached over
its direct port and driven the way RunPod's gateway drives a shell (a PTY, the
commands on stdin). Jobs run in tmux sessions on the pod, so they outlive the
connection that started them; `pod jobs` tells running, exited, killed and lost
(after a restart) apart."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from safe_terminate_helpers import Box
from test_safe_terminate import _local_pod, fake, new_pod, ssh_home  # noqa: F401 - fixtures

pytestmark = pytest.mark.docker

LOG_DIR = "/workspace/results/logs"


@pytest.fixture(scope="module")
def cli(fake, ssh_home, tmp_path_factory):  # noqa: F811 - fixtures
    """The real CLI in a subprocess (``PodCli``), its ssh pointed at the test key."""
    from fake_runpod.fixtures import PodCli

    runner = PodCli(fake, ssh_home.home, tmp_path_factory.mktemp("jobs"))
    runner.env["PATH"] = f"{ssh_home.bin}:{runner.env['PATH']}"
    return runner


@pytest.fixture(scope="module")
def job_pod(engine, pod_image, ssh_home):  # noqa: F811 - ssh_home is a fixture
    from imagebuild.pods import localrun

    pod = _local_pod(engine, pod_image, ssh_home)
    yield pod
    localrun.remove(engine, pod.ref.removeprefix("local:"), volume=True)


@pytest.fixture
def pod(job_pod, engine) -> Box:
    from imagebuild.pods import localrun

    if not job_pod.running():
        localrun.start(engine, job_pod.pod_id, job_pod.image, {})
    return job_pod


def jobs_of(cli, pod: Box) -> dict[str, dict]:  # noqa: F811 - cli is a fixture
    listed = cli("pod", "jobs", pod.ref, "--json")
    assert listed.code == 0, listed.output
    return {job["name"]: job for job in json.loads(listed.stdout)}


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def test_a_detached_job_runs_on_after_the_connection_and_its_name_is_taken(cli, pod):  # noqa: F811
    started = cli("pod", "run", pod.ref, "--detach", "--name", "train", "--json", "--",
                  "sh", "-c", "echo step 1; sleep 30; echo never")
    assert started.code == 0, started.output
    assert json.loads(started.stdout)["log"] == f"{LOG_DIR}/train.log"
    # The ssh that started it is gone; the job is not.
    assert jobs_of(cli, pod)["train"]["state"] == "running"
    assert pod.exec("tmux ls").startswith("job-train:")

    again = cli("pod", "run", pod.ref, "--detach", "--name", "train", "--", "true")
    assert again.code == 2 and again.stdout == ""
    assert again.stderr.strip().count("\n") == 0 and "job train is running" in again.stderr

    killed = cli("pod", "kill", pod.ref, "train", "--json")
    assert killed.code == 0, killed.output
    assert json.loads(killed.stdout)["state"] == "killed"
    assert jobs_of(cli, pod)["train"]["state"] == "killed"
    assert pod.run("pgrep -f 'sleep 30'").returncode == 1  # the whole process group
    assert pod.run("tmux has-session -t job-train").returncode != 0


def test_the_exit_code_of_a_failing_job_is_the_commands(cli, pod):  # noqa: F811
    done = cli("pod", "run", pod.ref, "--name", "fails", "--", "sh", "-c", "echo partial; echo oops >&2; exit 3")
    assert done.code == 3, done.output
    assert done.stdout == "partial\noops\n"
    job = jobs_of(cli, pod)["fails"]
    assert (job["state"], job["exit_code"]) == ("exited", 3)
    assert pod.exec(f"cat {LOG_DIR}/fails.log") == "partial\noops\n"


def test_ctrl_c_and_a_dropped_connection_leave_the_job_running(cli, pod):  # noqa: F811
    script = "echo begun; sleep 6; echo finished"
    for how, name in (("ctrl-c", "interrupted"), ("drop", "dropped")):
        proc = subprocess.Popen(cli.argv("pod", "run", pod.ref, "--name", name, "--", "sh", "-c", script),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=cli.full_env(), cwd=cli.workdir, start_new_session=True)
        assert proc.stdout.readline() == "begun\n"
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:  # the connection dies: its ssh is killed under the CLI
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
            assert children.stdout.split(), "no ssh under the CLI"
            for child in children.stdout.split():
                os.kill(int(child), signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode in (1, 130), (how, out, err)
        assert f"imagebuild pod tail {pod.ref} {name} -f" in err, (how, err)
        assert "Traceback" not in err
        assert jobs_of(cli, pod)[name]["state"] == "running", how
    for name in ("interrupted", "dropped"):
        wait_for(lambda name=name: jobs_of(cli, pod)[name]["state"] == "exited", 20, f"{name} ends")
        assert pod.exec(f"cat {LOG_DIR}/{name}.log") == "begun\nfinished\n"


def test_tail_follows_a_growing_log_to_the_end(cli, pod):  # noqa: F811
    started = cli("pod", "run", pod.ref, "--detach", "--name", "grows", "--",
                  "sh", "-c", "for i in 1 2 3 4 5; do echo line $i; sleep 0.5; done; exit 4")
    assert started.code == 0, started.output
    followed = cli("pod", "tail", pod.ref, "grows", "-f", "-n", "1000")
    assert followed.code == 0, followed.output
    assert followed.stdout == "".join(f"line {i}\n" for i in range(1, 6))

    last = cli("pod", "tail", pod.ref, "grows", "-n", "2", "--json")
    assert last.code == 0, last.output
    events = [json.loads(line) for line in last.stdout.splitlines()]
    assert events[:2] == [{"line": "line 4"}, {"line": "line 5"}]
    assert events[2]["job"]["exit_code"] == 4


def test_tail_follow_picks_up_a_dropped_stream_without_losing_or_repeating_lines(cli, pod):  # noqa: F811
    started = cli("pod", "run", pod.ref, "-d", "--name", "drops", "--",
                  "sh", "-c", "for i in $(seq 1 16); do echo line $i; sleep 0.4; done")
    assert started.code == 0, started.output
    proc = subprocess.Popen(cli.argv("pod", "tail", pod.ref, "drops", "-f", "-n", "1000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli.full_env(), cwd=cli.workdir, start_new_session=True)
    seen = [proc.stdout.readline(), proc.stdout.readline()]
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    assert children.stdout.split(), "no ssh under the CLI"
    for child in children.stdout.split():  # the connection dies mid-follow
        os.kill(int(child), signal.SIGKILL)
    out = proc.stdout.read()  # not communicate(): it skips what readline() buffered
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0, err
    assert "dropped; reconnecting" in err
    assert "".join(seen) + out == "".join(f"line {i}\n" for i in range(1, 17))


def test_project_user_and_the_pods_shell(cli, pod):  # noqa: F811
    pod.exec("mkdir -p /workspace/code/resrl/.venv/bin && "
             "echo 'export VIRTUAL_ENV=/workspace/code/resrl/.venv' > /workspace/code/resrl/.venv/bin/activate && "
             "echo 'export FROM_BASHRC_POD=yes' >> /workspace/.bashrc_pod")
    done = cli("pod", "run", pod.ref, "--user", "dev", "--project", "resrl", "--",
               "sh", "-c", 'id -un; pwd; echo "$VIRTUAL_ENV $FROM_BASHRC_POD $HDF5_USE_FILE_LOCKING"')
    assert done.code == 0, done.output
    assert done.stdout.splitlines() == ["dev", "/workspace/code/resrl",
                                        "/workspace/code/resrl/.venv yes FALSE"]


def test_unknown_jobs_and_bad_input_are_one_line(cli, pod):  # noqa: F811
    for args, words in ((("tail", pod.ref, "nope"), "no job nope"),
                        (("kill", pod.ref, "nope"), "no job nope"),
                        (("run", pod.ref, "--name", "bad name", "--", "true"), "job name"),
                        (("run", pod.ref, "--user", "alice", "--", "true"), "--user")):
        result = cli("pod", *args)
        assert result.code == 2, (args, result.output)
        assert words in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
        assert result.stdout == "", result.stdout
        assert "Traceback" not in result.output


def test_a_job_lost_in_a_restart_is_shown_with_its_last_lines_and_its_name_reused(cli, pod, engine):  # noqa: F811
    from imagebuild.pods import localrun

    started = cli("pod", "run", pod.ref, "--detach", "--name", "long", "--",
                  "sh", "-c", "echo epoch 1; echo epoch 2; sleep 300")
    assert started.code == 0, started.output
    wait_for(lambda: "epoch 2" in pod.exec(f"cat {LOG_DIR}/long.log"), 10, "the job's output")
    localrun.stop(engine, pod.pod_id)
    localrun.start(engine, pod.pod_id, pod.image, {})

    lost = jobs_of(cli, pod)["long"]
    assert lost["state"] == "lost" and lost["last_lines"][-2:] == ["epoch 1", "epoch 2"]
    table = cli("pod", "jobs", pod.ref)
    assert "lost" in table.stdout and "| epoch 2" in table.stdout

    again = cli("pod", "run", pod.ref, "--name", "long", "--", "echo", "second run")
    assert again.code == 0 and again.stdout == "second run\n", again.output
    assert jobs_of(cli, pod)["long"]["state"] == "exited"


def test_a_gateway_style_session_gives_the_same_answers(pod, ssh_home):  # noqa: F811
    """RunPod's gateway: a PTY, the commands on stdin, echo and prompts around the
    output. The pod's real sshd driven that way: start, follow, list, kill."""
    from imagebuild.pods import jobs
    from imagebuild.pods.ssh import Endpoint

    remote = jobs.Remote(Endpoint("proxy", "127.0.0.1", pod.port, "root"), pod.ref,
                         ["-o", f"HostKeyAlias={pod.name}"], None, str(ssh_home.ssh))
    seen: list[bytes] = []
    done = jobs.follow(remote, "via-gateway", seen.append, lines=0,
                       start=jobs.start_args("via-gateway", ["sh", "-c", "echo one; echo two; exit 5"]))
    assert b"".join(seen) == b"one\ntwo\n"
    assert (done.job["state"], done.job["exit_code"]) == ("exited", 5)
    listed = {job["name"]: job for job in jobs.call(remote, "list")}
    assert listed["via-gateway"]["exit_code"] == 5

    jobs.call(remote, *jobs.start_args("gw-sleeps", ["sleep", "60"]))
    [killed] = jobs.call(remote, "kill", "gw-sleeps")
    assert killed["state"] == "killed"


@contextlib.contextmanager
def run_in(cli, folder: Path):  # noqa: F811 - cli is a fixture
    """The CLI run from ``folder`` (--sync's default is the repository it is in)."""
    before, cli.workdir = cli.workdir, folder
    try:
        yield cli
    finally:
        cli.workdir = before


def small_repo(repo: Path) -> Path:
    from safe_terminate_helpers import git

    (repo / "src").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("data/\n")
    (repo / "train.py").write_text("print('v1')\n")
    (repo / "old.py").write_text("gone soon\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "initial")
    (repo / "notes.md").write_text("untracked, not ignored\n")
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_text("ignored\n")
    return repo


def check_sync(cli, pod_ref: str, repo: Path, edit_on_pod) -> None:  # noqa: F811
    """Mirror (--sync-dir DIR), a deletion and an edit (plain --sync from inside the
    repository, `--` right after it), then a pod-side edit refuses the next sync."""
    ls = "ls -A | sort | tr '\\n' ' '"
    first = cli("pod", "run", pod_ref, "--sync-dir", str(repo), "--", "sh", "-c", f"pwd; {ls}")
    assert first.code == 0, first.output
    assert first.stdout.replace("\r", "").splitlines() == [
        f"/workspace/code/{repo.name}", ".gitignore notes.md old.py src train.py "]

    (repo / "old.py").unlink()
    (repo / "train.py").write_text("print('v2')\n")
    with run_in(cli, repo / "src") as inside:  # a subfolder: the whole repository goes
        second = inside("pod", "run", pod_ref, "--sync", "--", "sh", "-c", f"{ls}; echo; cat train.py")
    assert second.code == 0, second.output
    assert second.stdout.replace("\r", "").splitlines() == [".gitignore notes.md src train.py ",
                                                             "print('v2')"]

    edit_on_pod(f"echo 'edited on the pod' >> /workspace/code/{repo.name}/train.py")
    (repo / "train.py").write_text("print('v3')\n")
    refused = cli("pod", "run", pod_ref, "--sync-dir", str(repo), "--", "true")
    assert refused.code == 2, refused.output
    assert "train.py" in refused.stderr and "changes made on the pod" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0


def test_sync_mirrors_the_tree_with_deletions_and_refuses_to_overwrite_pod_edits(cli, pod, tmp_path):  # noqa: F811
    repo = small_repo(tmp_path / "resnet")
    (repo / "src" / ".keep").write_text("")  # src/ holds a file: it is in the tree
    check_sync(cli, pod.ref, repo, pod.exec)
    assert pod.exec("cat /workspace/code/resnet/train.py") == "print('v2')\nedited on the pod\n"

    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with run_in(cli, outside) as there:
        for args in (("--sync",), ("--sync-dir", str(outside))):
            bad = there("pod", "run", pod.ref, *args, "--", "true")
            assert bad.code == 2 and bad.stderr.strip().count("\n") == 0, bad.output
            assert "not in a git repository" in bad.stderr and args[0] in bad.stderr


def test_stop_with_a_running_job_asks_refuses_without_a_terminal_or_kills_it(cli, pod, engine):  # noqa: F811
    """Stopping ends every job (they come back as lost): said first, never silently."""
    from imagebuild.pods import localrun

    assert cli("pod", "run", pod.ref, "-d", "--name", "held", "--", "sleep", "300").code == 0
    refused = cli("pod", "stop", pod.ref)  # no terminal to ask on
    assert refused.code == 1, refused.output
    assert refused.stderr.strip().count("\n") == 0 and "Traceback" not in refused.stderr
    assert "job(s) held" in refused.stderr and "--kill-jobs" in refused.stderr
    declined = cli("pod", "stop", pod.ref, tty="n\n")
    assert declined.code == 1 and "not stopped" in declined.output, declined.output
    assert "held" in declined.output
    assert pod.running() and jobs_of(cli, pod)["held"]["state"] == "running"

    stopped = cli("pod", "stop", pod.ref, "--kill-jobs", "--json")
    assert stopped.code == 0, stopped.output
    assert "killed held" in stopped.stderr and json.loads(stopped.stdout)["status"] == "stopped"
    assert not pod.running()
    localrun.start(engine, pod.pod_id, pod.image, {})
    assert jobs_of(cli, pod)["held"]["state"] == "killed"  # ended by us, not lost

    assert cli("pod", "run", pod.ref, "-d", "--name", "held", "--", "sleep", "300").code == 0
    forced = cli("pod", "stop", pod.ref, "--force")
    assert forced.code == 0 and "--force" in forced.stderr and "held" in forced.stderr, forced.output
    assert not pod.running()


@pytest.mark.parametrize("kind", ["local", "runpod"])
def test_terminate_refuses_while_a_job_runs_unless_kill_jobs(cli, new_pod, kind):  # noqa: F811
    box = new_pod(kind)
    started = cli("pod", "run", box.ref, "--detach", "--name", "sim", "--", "sleep", "120")
    assert started.code == 0, started.output

    saved = cli("pod", "save", box.ref, "--json")
    assert json.loads(saved.stdout)["jobs"] == {"running": ["sim"]}, saved.output
    refused = cli("pod", "terminate", box.ref, "--yes", "--force")
    assert refused.code == 1, refused.output
    assert "job(s) sim still running" in refused.stderr and "--kill-jobs" in refused.stderr
    assert "jobs still running" in refused.stdout  # the save's report names it
    assert box.running() and box.volume_exists()

    # The job's log is in /workspace/results, which pod-save counts as not saved
    # (no rclone sync here): --force lets it go.
    done = cli("pod", "terminate", box.ref, "--yes", "--kill-jobs", "--force")
    assert done.code == 0, done.output
    assert "killed sim" in done.stderr and box.gone()


# -- a RunPod pod without a public IP: everything through the gateway (fake_runpod.gateway) --


@pytest.fixture(scope="module")
def gateway():
    from fake_runpod.gateway import Gateway, available

    if available() is not None:
        pytest.skip(str(available()))
    with Gateway() as gw:
        yield gw


@pytest.fixture(scope="module")
def gateway_cli(engine, pod_image, gateway, ssh_home, tmp_path_factory):  # noqa: F811
    from fake_runpod import ContainerBackend, FakeRunPod
    from fake_runpod.fixtures import PodCli
    from test_safe_terminate import POD_ENV

    with FakeRunPod(backend=ContainerBackend(engine, POD_ENV), gateway=gateway) as server:
        server.state.public_ip = False  # RunPod's gateway is the only way in
        runner = PodCli(server, ssh_home.home, tmp_path_factory.mktemp("gateway-jobs"))
        runner.env["PATH"] = f"{ssh_home.bin}:{runner.env['PATH']}"
        yield runner
        for pod_id in list(server.pods):
            from imagebuild.pods import localrun

            localrun.remove(engine, ContainerBackend.name(pod_id), volume=True)
    assert server.mismatches == [], server.mismatches


@pytest.fixture(scope="module")
def gateway_pod(gateway_cli, pod_image, ssh_home) -> str:  # noqa: F811
    from conftest import unique_name

    name = unique_name("gwjobs")
    created = gateway_cli("pod", "create", "--image", pod_image, "--gpu", "4090", "--name", name,
                          "--public-key", ssh_home.public_key.strip(), "--timeout", "120")
    assert created.code == 0, created.output
    assert "gateway" in created.output  # no public IP: no direct port
    return name


def test_jobs_through_the_gateway_work_the_same(gateway_cli, gateway_pod):
    ran = gateway_cli("pod", "run", gateway_pod, "--name", "gw", "--json", "--",
                      "sh", "-c", "echo one; echo two >&2; exit 5")
    assert ran.code == 5, ran.output
    assert json.loads(ran.stdout)["exit_code"] == 5  # --json: nothing but the job on stdout
    assert "one\ntwo\n" in ran.stderr.replace("\r", "")

    listed = gateway_cli("pod", "jobs", gateway_pod, "--json")
    assert listed.code == 0, listed.output
    assert {job["name"]: job["exit_code"] for job in json.loads(listed.stdout)} == {"gw": 5}

    started = gateway_cli("pod", "run", gateway_pod, "-d", "--name", "gw-long", "--",
                          "sh", "-c", "echo working; sleep 60")
    assert started.code == 0, started.output
    wait_for(lambda: gateway_cli("pod", "tail", gateway_pod, "gw-long").stdout == "working\n", 15,
             "the detached job's first line through the gateway")
    killed = gateway_cli("pod", "kill", gateway_pod, "gw-long", "--json")
    assert killed.code == 0 and json.loads(killed.stdout)["state"] == "killed", killed.output


def test_sync_through_the_gateway_mirrors_and_refuses_the_same(gateway_cli, gateway_pod, tmp_path):
    """The gateway carries no file transfer: the tree goes inside the typed script."""
    repo = small_repo(tmp_path / "gwcode")
    (repo / "src" / "model.py").write_bytes(bytes(range(256)) * 64)  # binary, over a PTY

    def edit_on_pod(command: str) -> None:
        done = gateway_cli("pod", "run", gateway_pod, "--", "sh", "-c", command)
        assert done.code == 0, done.output

    check_sync(gateway_cli, gateway_pod, repo, edit_on_pod)
    same = gateway_cli("pod", "run", gateway_pod, "--", "sha256sum", "/workspace/code/gwcode/src/model.py")
    assert hashlib.sha256((repo / "src" / "model.py").read_bytes()).hexdigest() in same.stdout


def test_pod_restore_reaches_a_runpod_pod_over_ssh(cli, new_pod):  # noqa: F811
    # The local pod's path (docker exec) is tests/test_autosave_crash.py's; this one goes
    # through the pod's sshd as RunPod's pods are reached, with a clone a crash left.
    box = new_pod("runpod")
    box.exec("git init -q --bare /tmp/r.git && mkdir -p /workspace/code/p && "
             "chown -R dev: /workspace/code /tmp/r.git")
    box.exec("set -e; cd /workspace/code/p; git init -q -b main; "
             "git -c user.name=d -c user.email=d@x commit -q --allow-empty -m one; "
             "git remote add origin /tmp/r.git; git push -q -u origin main; "
             "printf 'run\\n' > run.sh; chmod +x run.sh; pod-save > /dev/null || true; "
             "cd ..; rm -rf p; git clone -q /tmp/r.git p", user="dev")
    done = cli("pod", "restore", box.ref, "code/p", "--json")
    assert done.code == 0, done.output
    assert [(r["repo"], r["ok"]) for r in json.loads(done.stdout)["repos"]] == [("code/p", True)]
    assert box.exec("stat -c '%a %U' /workspace/code/p/run.sh") == "755 dev\n"
    human = cli("pod", "restore", box.ref, "code/p", "code/none")
    assert human.code == 1 and "code/none: failed (exit 2)" in human.stdout, human.output


def test_pod_restore_through_the_gateway_restores_byte_for_byte(gateway_cli, gateway_pod):
    """No public IP: `pod restore` types its script into the gateway's PTY and reads the
    framed per-clone results back from the same echoing, CRLF stream."""
    made = gateway_cli("pod", "run", gateway_pod, "--", "sh", "-c",
                       "set -e; git init -q --bare /tmp/gr.git; mkdir -p /workspace/code/gp; "
                       "cd /workspace/code/gp; git init -q -b main; "
                       "git -c user.name=d -c user.email=d@x commit -q --allow-empty -m one; "
                       "git remote add origin /tmp/gr.git; git push -q -u origin main; "
                       "printf 'run\\r\\n' > run.sh; chmod +x run.sh; pod-save > /dev/null || true; "
                       "cd ..; rm -rf gp; git clone -q /tmp/gr.git gp")
    assert made.code == 0, made.output
    done = gateway_cli("pod", "restore", gateway_pod, "code/gp", "--json")
    assert done.code == 0, done.output
    assert [(r["repo"], r["ok"]) for r in json.loads(done.stdout)["repos"]] == [("code/gp", True)]
    back = gateway_cli("pod", "run", gateway_pod, "--", "sh", "-c",
                       "stat -c %a /workspace/code/gp/run.sh; od -An -c /workspace/code/gp/run.sh")
    assert back.code == 0, back.output
    lines = back.stdout.replace("\r\n", "\n").split("\n")
    assert lines[0] == "755" and "\\r  \\n" in back.stdout, back.stdout  # mode and CRLF kept
