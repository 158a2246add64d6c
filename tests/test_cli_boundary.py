"""The CLI's one error boundary (issue 26): every hostile way a command can end is one
line on stderr, the right exit code, no traceback, no partial file - and, for the
commands that cost money, no request that does.

Each case runs the real CLI in a subprocess, as a user or a script would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import record_push

from imagebuild.engine import buildkit

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

SPEC = Path(__file__).parent / "specs" / "ci.toml"
IMAGE = "registry.example/you/research-pod@sha256:" + "ab" * 32


def imagebuild(*args: str, cwd: Path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
               env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebuild", *args], cwd=cwd, stdin=stdin,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)


def one_line(done: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The whole of stderr: one ``imagebuild:`` line with ``words``, and ``code``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (done.returncode, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("imagebuild: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# -- files and folders -----------------------------------------------------------------


def test_render_into_a_file_names_the_flag_and_writes_nothing(tmp_path):
    (tmp_path / "plan").write_text("mine\n")
    done = imagebuild("render", "--spec", str(SPEC), "--out", "plan", cwd=tmp_path)
    one_line(done, 2, "--out", "plan is a file")
    below = imagebuild("render", "--spec", str(SPEC), "--out", "plan/deeper", cwd=tmp_path)
    one_line(below, 2, "--out", "plan is a file, so plan/deeper cannot be created")
    assert (tmp_path / "plan").read_text() == "mine\n" and sorted(os.listdir(tmp_path)) == ["plan"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_render_into_a_read_only_folder_names_it(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    done = imagebuild("render", "--spec", str(SPEC), "--out", "locked/out", cwd=tmp_path)
    one_line(done, 2, "--out", "is not writable")


def test_an_os_error_deep_in_a_command_is_one_line_naming_the_path(tmp_path):
    # /proc takes no new folders, whoever asks: the write fails inside render itself.
    done = imagebuild("render", "--spec", str(SPEC), "--out", "/proc/imagebuild-test", cwd=tmp_path)
    one_line(done, 1, "/proc/imagebuild-test", "No such file or directory")


def test_a_full_stdout_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        done = imagebuild("--version", cwd=tmp_path, stdout=full)
    one_line(done, 1, "cannot write the output", "No space left on device")


def test_a_reader_that_went_away_ends_quietly(tmp_path):
    read, write = os.pipe()
    os.close(read)  # `imagebuild ... | head` after head has exited
    try:
        done = imagebuild("export", "skypilot", "--image", IMAGE, "--gpu", "4090", "--", "python t.py",
                          cwd=tmp_path, stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == "", done.stderr


def test_closed_stdio_is_no_traceback(tmp_path):
    # `<&- >&-`: Python sees None for both; commands still run and say nothing wrong.
    done = subprocess.run(
        ["bash", "-c", 'exec 0<&- 1>&-; exec "$@"', "_", sys.executable, "-m", "imagebuild",
         "render", "--spec", str(SPEC), "--out", "out"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    # stderr may carry render's note that the spec has no lock yet, and nothing else.
    said = [line for line in done.stderr.splitlines() if not line.startswith("note: ")]
    assert done.returncode == 0 and said == [], done.stderr
    assert (tmp_path / "out" / "plan.json").is_file()


def test_a_sweep_that_fails_midway_leaves_no_tasks(tmp_path):
    # A sweep of 30 tasks onto a folder that fills up: all or nothing, never 11 of 30.
    # (A tmpfs this small would need root to mount; a folder whose later task
    # names are taken by folders makes the 12th write fail the same way.)
    out = tmp_path / "tasks"
    out.mkdir()
    first = imagebuild("export", "skypilot", "--image", IMAGE, "--gpu", "4090", "--sweep",
                       "seed=" + ",".join(map(str, range(30))), "--out", str(out), "--", "python t.py --seed $SEED", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 30
    for path in out.iterdir():
        path.unlink()
    (out / names[11]).mkdir()  # the 12th task's file cannot be written
    done = imagebuild("export", "skypilot", "--image", IMAGE, "--gpu", "4090", "--sweep",
                      "seed=" + ",".join(map(str, range(30))), "--out", str(out), "--", "python t.py --seed $SEED", cwd=tmp_path)
    one_line(done, 1, names[11])
    assert [p.name for p in out.iterdir()] == [names[11]], sorted(os.listdir(out))


# -- usage -----------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (("pod", "create", "--gpu-count", "abc"), ("--gpu-count", "`imagebuild pod create --help`")),
    (("pod", "create", "--no-such-flag"), ("--no-such-flag", "`imagebuild pod create --help`")),
    (("nosuch",), ("nosuch", "`imagebuild --help`")),
    (("pod", "ssh"), ("POD", "`imagebuild pod ssh --help`")),
])
def test_usage_errors_are_one_line_pointing_to_help(tmp_path, args, words):
    done = imagebuild(*args, cwd=tmp_path)
    one_line(done, 2, *words)
    assert "Usage:" not in done.stderr and "Try '" not in done.stderr


# -- interrupts ------------------------------------------------------------------------


def _interrupted(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    time.sleep(1.5)  # past start-up: inside the command
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


@pytest.mark.parametrize("signum, code, words", [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "interrupted (SIGTERM)")])
def test_an_interrupted_command_says_so(fake_runpod, pod_cli: PodCli, signum, code, words):
    # A create waiting for its pod: the wait is cut short and the pod it made is
    # terminated on the way out (it never became ready, nothing is on it).
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    fake_runpod.inject("slow_provisioning", seconds=600)
    process = subprocess.Popen(pod_cli.argv("pod", "create", "--name", "cut"), cwd=pod_cli.workdir,
                               env=pod_cli.full_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    returncode, stderr = _interrupted(process, signum)
    assert returncode == code, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("imagebuild: ") and words in last, stderr
    assert "Traceback" not in stderr and fake_runpod.billing() == []


def test_an_interrupted_build_ends_its_docker_build(tmp_path):
    # The build child must not run on for seconds after imagebuild is gone: a
    # stand-in docker CLI that builds for a minute, and a progress display that fails.
    marker = tmp_path / "child.pid"
    docker = tmp_path / "docker"
    docker.write_text(f"#!/bin/sh\necho $$ > {marker}\necho '#1 [1/1] RUN sleep'\nexec sleep 60\n")
    docker.chmod(0o755)

    class StandIn:
        def build_argv(self):
            return [str(docker)]

        def env(self):
            return dict(os.environ)

    def interrupt(status: str) -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        buildkit.build(StandIn(), tmp_path, "t:1", {}, {}, on_line=interrupt)
    child = int(marker.read_text())
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


# -- stdin and the API -------------------------------------------------------------------


def test_terminate_with_stdin_closed_refuses_naming_yes(fake_runpod, pod_cli: PodCli):
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    assert pod_cli("pod", "create", "--name", "kept", "--no-wait").code == 0
    done = subprocess.run(["bash", "-c", 'exec 0<&-; exec "$@"', "_", *pod_cli.argv(
        "pod", "terminate", "kept", "--force")], cwd=pod_cli.workdir, env=pod_cli.full_env(),
        capture_output=True, text=True, timeout=60, check=False)
    one_line(done, 2, "--yes")
    assert len(fake_runpod.pods) == 1 and not [r for r in fake_runpod.requests if r.method == "DELETE"]


@pytest.mark.parametrize("body, words", [
    ("", "empty body"),
    ("[]", "JSON list, not an object"),
    ({"pods": "none"}, "field 'pods' is a str, not a list"),
    ({"pods": [{"name": "no-id"}]}, "pods[0] has no string 'id'"),
    ("<html>upstream error</html>", "not JSON"),
])
def test_an_answer_of_another_shape_is_one_line(fake_runpod, pod_cli: PodCli, body, words):
    fake_runpod.inject("off_contract", times=10, method="GET", path="/v2/pods",
                       body=body if isinstance(body, str) else json.dumps(body))
    for args in (("pod", "list"), ("pod", "list", "--json"), ("pod", "status", "x")):
        result = pod_cli(*args)
        assert result.code == 1 and words in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == "", result.output


@pytest.mark.parametrize("path, args, words", [
    ("/v2/network-volumes", ("volume", "list"), "networkVolumes"),
    ("/v2/network-volumes", ("volume", "list", "--json"), "networkVolumes"),
    ("/v2/catalog/gpus", ("gpus",), "gpus"),
    ("/v2/catalog/gpus", ("gpus", "--json"), "gpus"),
])
def test_other_listings_of_another_shape_are_one_line(fake_runpod, pod_cli: PodCli, path, args, words):
    fake_runpod.inject("off_contract", times=10, method="GET", path=path, body=json.dumps({words: "none"}))
    result = pod_cli(*args)
    assert result.code == 1 and f"field '{words}' is a str, not a list" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == "", result.output


def test_volume_rm_with_stdin_closed_refuses_naming_yes(fake_runpod, pod_cli: PodCli):
    assert pod_cli("volume", "create", "keep", "--size", "20", "--datacenter", "EU-RO-1").code == 0
    done = subprocess.run(["bash", "-c", 'exec 0<&-; exec "$@"', "_", *pod_cli.argv(
        "volume", "rm", "keep")], cwd=pod_cli.workdir, env=pod_cli.full_env(),
        capture_output=True, text=True, timeout=60, check=False)
    one_line(done, 2, "--yes")
    assert not [r for r in fake_runpod.requests if r.method == "DELETE"]


def test_a_json_reader_that_went_away_ends_quietly(fake_runpod, pod_cli: PodCli):
    read, write = os.pipe()
    os.close(read)  # `imagebuild pod list --json | jq` after jq has gone
    try:
        done = subprocess.run(pod_cli.argv("pod", "list", "--json"), cwd=pod_cli.workdir,
                              env=pod_cli.full_env(), stdout=write, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True, timeout=60, check=False)
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == "", done.stderr


def test_export_out_below_a_file_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "taken").write_text("mine\n")
    done = imagebuild("export", "skypilot", "--image", IMAGE, "--gpu", "4090", "--json",
                      "--out", "taken/task.yaml", "--", "python t.py", cwd=tmp_path)
    one_line(done, 2, "--out", "taken")
    assert done.stdout == "" and sorted(os.listdir(tmp_path)) == ["taken"]


def test_an_unreadable_create_answer_finds_the_pod_it_made(fake_runpod, pod_cli: PodCli):
    # The pod was made (RunPod's side) but the answer is an empty 200: it is looked up
    # by name, never sent again, and reported - not left billing unseen.
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    fake_runpod.inject("off_contract", method="POST", path="/v2/pods", body="")
    result = pod_cli("pod", "create", "--name", "shape", "--no-wait")
    assert len(fake_runpod.calls("POST", "/v2/pods")) == 1
    assert result.code == 0 and len(fake_runpod.pods) == 1, result.output
    (pod_id,) = fake_runpod.pods
    assert pod_id in result.output


# -- builds ----------------------------------------------------------------------------


def test_an_untrusted_certificate_in_a_build_step_names_ca_cert():
    from imagebuild.image.builder import Builder

    failure = buildkit.BuildFailed("[2/5] RUN pip install torch", [
        "WARNING: Retrying (Retry(total=4...)) after connection broken by 'SSLError(SSLCertVerificationError(1,"
        " '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
        "certificate (_ssl.c:1006)'))': /simple/torch/"])
    plain = str(Builder._explain(None, "python", failure))
    assert "--ca-cert /etc/ssl/certs/ca-certificates.crt" in plain
    given = str(Builder._explain(None, "python", failure, Path("/etc/my-ca.pem")))
    assert "even with --ca-cert /etc/my-ca.pem" in given
    other = buildkit.BuildFailed("[2/5] RUN false", ["exit code: 1"])
    assert "--ca-cert" not in str(Builder._explain(None, "python", other))


# -- help ------------------------------------------------------------------------------


def _commands(node, path=()):
    yield path
    for name, sub in sorted(getattr(node, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def test_help_never_shows_type_names(capsys):
    # `--secret <list[str]>`, `POD <str>`, `--idle-minutes <int range>`: what a value
    # is goes in its name (N, PATH, FILE, POD), not in Python's words.
    from imagebuild.cli import command

    tree = command()
    seen = 0
    for path in _commands(tree):
        assert tree.main([*path, "--help"], prog_name="imagebuild", standalone_mode=False) == 0
        text = capsys.readouterr().out
        seen += 1
        for word in ("<str>", "<int", "<list", "<float>", "<path>", "<file>", "<bool>"):
            assert word not in text, (path, word, text)
    assert seen > 20


# -- waits -------------------------------------------------------------------------------


def test_api_retries_are_said_as_they_happen(fake_runpod, pod_cli: PodCli):
    # A struggling API is never a silent wait: each pause says which try, how long, why.
    fake_runpod.inject("server_error", times=2, method="GET", path="/v2/pods")
    result = pod_cli("pod", "list", "--json")
    assert result.code == 0 and json.loads(result.stdout) == [], result.output
    said = [line for line in result.stderr.splitlines() if "retry" in line]
    assert len(said) == 2 and said[0].startswith("imagebuild: RunPod: retry 2/4 in "), result.stderr
    assert "500 Internal Server Error" in said[0] and said[1].startswith("imagebuild: RunPod: retry 3/4")


@pytest.mark.docker
def test_layers_against_an_image_that_is_not_here_is_an_error(test_base, tmp_path):
    done = imagebuild("layers", test_base, "--against", "imagebuild-test/no-such:typo", cwd=tmp_path)
    one_line(done, 2, "--against", "imagebuild-test/no-such:typo")
    assert done.stdout == ""
    same = imagebuild("layers", test_base, "--against", test_base, "--json", cwd=tmp_path)
    assert same.returncode == 0 and not any(la["new"] for la in json.loads(same.stdout)["layers"])
