"""The pod entrypoint on real containers of the test image: first boot, restarts,
recreations on the same volume, SSH as root and dev (the seed guide's
`ssh -tt host <<'EOF'` included), stop hooks, 20 restarts, and bad inputs."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ca_bundle, docker
from image.pod import Pod

pytestmark = pytest.mark.docker

SECRET = "hf_s3cr3t_value_never_logged"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two throwaway ed25519 keys and a known_hosts file."""
    folder = tmp_path_factory.mktemp("ssh")
    for name in ("a", "b"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"test-{name}",
                        "-f", str(folder / name)], check=True)
    return {"a": folder / "a", "b": folder / "b", "known_hosts": folder / "known_hosts"}


def pub(key: Path) -> str:
    return key.with_suffix(".pub").read_text().strip()


@pytest.fixture
def pods(pod_image, keys):
    made: list[Pod] = []

    def make(**kwargs) -> Pod:
        made.append(Pod(pod_image, keys["a"], keys["known_hosts"], **kwargs))
        return made[-1]

    yield make
    for pod in made:
        pod.destroy()


def wait_for_log(pod: Pod, pattern: str, count: int = 1, timeout: float = 240) -> str:
    """The entrypoint log once ``pattern`` occurs ``count`` times in it."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        log = pod.log()
        if len(re.findall(pattern, log)) >= count:
            return log
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} not {count} times in the log after {timeout} s:\n{pod.log()}")


def wait_for_apt_restore(pod: Pod, starts: int) -> str:
    """The log once the background apt restore of the last of ``starts`` starts is done.
    A stop may interrupt the restore of the start before it (the log then says so)."""
    log = wait_for_log(pod, r"apt: restore (done in \d+ ms|interrupted)", count=starts)
    outcomes = re.findall(r"apt: restore (done|interrupted)", log)
    assert outcomes[-1] == "done", outcomes
    return log


def test_first_boot_creates_the_layout_and_never_overwrites(pods):
    pod = pods()
    pod.prepare_volume("mkdir -p /workspace/code && echo mine > /workspace/code/keep.txt"
                       " && echo '# my bashrc_pod' > /workspace/.bashrc_pod")
    pod.create()
    listing = pod.exec("cd /workspace && stat -c '%n %U %G %a' code datasets results models wandb "
                       ".cache/uv .cache/pip .cache/huggingface .cache/npm .cache/torch "
                       ".local/share/uv/python .pod .pod/ssh")
    owners = dict(line.split(" ", 1) for line in listing.splitlines())
    assert owners["datasets"] == "dev dev 2775" and owners[".cache/uv"] == "dev dev 2775"
    assert owners[".local/share/uv/python"] == "dev dev 2775"
    assert owners[".pod"] == "root root 755" and owners[".pod/ssh"] == "root root 700"
    assert pod.exec("cat /workspace/code/keep.txt /workspace/.bashrc_pod") == "mine\n# my bashrc_pod\n"
    # tini is PID 1 and the entrypoint its child; each step logged with its duration.
    assert pod.exec("cat /proc/1/comm").strip() == "tini"
    assert "pod-entrypoint" in pod.exec("ps -o args= --ppid 1")
    log = pod.log()
    for step in ("users", "workspace", "environment", "claude", "git", "ssh-keys", "host-keys", "sshd"):
        assert re.search(rf"step {step}: ok \(\d+ ms\)", log), step
    assert re.search(r"pod ready in \d+ ms", log)
    assert "generated host keys (ed25519 ecdsa)" in log
    wait_for_log(pod, "generated the RSA host key")  # slow to make: in the background
    assert pod.exec("ls /workspace/.pod/ssh").split() == [
        f"ssh_host_{t}_key{s}" for t in ("ecdsa", "ed25519", "rsa") for s in ("", ".pub")]


def test_restart_and_recreate_bring_the_pod_back(pods, keys):
    dotenv = (f"GIT_USER_NAME='Ada Lovelace'\nGIT_USER_EMAIL=ada@example.com\nHF_TOKEN={SECRET}\n"
              f"this line is broken {SECRET}\nexport GITHUB_TOKEN=\"ghp_{SECRET}\" # comment\n"
              f"WANDB_API_KEY='{SECRET}\n")
    pod = pods()
    pod.prepare_volume(f"cat > /workspace/.env <<'EOF'\n{dotenv}EOF")
    pod.create()
    # What a user leaves behind: Claude Code's login (as dev), a project, an apt package.
    pod.ssh_ok("dev", "echo '{\"token\": 1}' > ~/.claude/.credentials.json && "
                      "echo '{\"userID\": \"u1\"}' > ~/.claude.json")
    pod.ssh_ok("root", "source /workspace/.bashrc_pod && new-project personal-research/residual-rl"
                       " && git init -q && touch a && git add a && git commit -qm first")
    pod.ssh_ok("root", "pod-apt install sl >/dev/null")
    assert pod.exec("cat /workspace/.pod/apt-packages.txt") == "sl\n"
    host_key, offered = pod.host_key(), pod.host_key_fingerprints()

    pod.restart()
    assert pod.host_key() == host_key
    # A key type may be added later (RSA is made in the background); none may change.
    restarted = pod.host_key_fingerprints()
    assert offered <= restarted, f"host keys changed on restart: {offered} -> {restarted}"
    assert pod.ssh_ok("root", "echo $HF_TOKEN", strict=True).strip() == SECRET

    pod.recreate()
    assert pod.exec("test ! -e /usr/games/sl && echo gone-from-disk").strip() == "gone-from-disk"
    assert pod.host_key() == host_key and restarted <= pod.host_key_fingerprints()
    # The pinned host key (same alias, new container and port) still matches.
    for user in ("root", "dev"):
        assert pod.ssh_ok(user, "cat ~/.claude/.credentials.json ~/.claude.json", strict=True) == \
            '{"token": 1}\n{"userID": "u1"}\n'
    env = pod.ssh_ok("dev", "echo \"$HF_TOKEN|$GITHUB_TOKEN|${WANDB_API_KEY-unset}|$HDF5_USE_FILE_LOCKING\"")
    assert env.strip() == f"{SECRET}|ghp_{SECRET}|unset|FALSE"
    assert pod.ssh_ok("dev", "git config user.name; git config user.email") == \
        "Ada Lovelace\nada@example.com\n"
    # GitHub credentials come from .env through the helper; safe.directory lets dev
    # work in the repository root made.
    fill = pod.ssh_ok("dev", "printf 'protocol=https\\nhost=github.com\\n\\n' | git credential fill")
    assert f"password=ghp_{SECRET}" in fill
    assert pod.ssh_ok("dev", "git -C /workspace/code/personal-research/residual-rl log --format=%s") \
        == "first\n"
    # The seed guide's way in: a forced tty and a heredoc, `proj` finds the nested project.
    session = pod.ssh("root", tty=True, stdin=(
        "source /workspace/.bashrc_pod 2>/dev/null\nproj residual-rl\n"
        "echo \"AT=$PWD VENV=$VIRTUAL_ENV\"\n"
        "python -c 'import mujoco, gymnasium; print(\"BAKED-IMPORTS-OK\")'\nexit\n"))
    assert "AT=/workspace/code/personal-research/residual-rl VENV=/workspace/code/personal-research/" \
           "residual-rl/.venv" in session.stdout, session.stdout
    assert "BAKED-IMPORTS-OK" in session.stdout
    # The recorded apt package comes back in the background, and the log says so.
    log = wait_for_apt_restore(pod, starts=2)  # after the restart, and now
    assert pod.exec("test -x /usr/games/sl && echo back").strip() == "back"
    # The malformed lines are reported by number; no value reaches a log.
    assert "/workspace/.env line 4: skipped" in log and "/workspace/.env line 6: skipped" in log
    everything = log + pod.logs() + pod.exec("cat /workspace/.pod/logs/*.log")
    assert SECRET not in everything
    # Removing forgets it.
    pod.ssh_ok("root", "pod-apt remove sl >/dev/null")
    assert pod.exec("pod-apt list; test -e /usr/games/sl || echo removed") == "removed\n"


def test_pod_apt_refuses_bad_input(pods):
    pod = pods()
    pod.create()
    for user, command, message in [
        ("root", "pod-apt install 'sl;reboot'", "not an apt package name: sl;reboot"),
        ("dev", "pod-apt install sl", "run as root"),
        ("root", "pod-apt remove tmux", "tmux is not recorded (see pod-apt list); nothing removed"),
        ("root", "pod-apt frobnicate", "pod-apt install PKG..."),
    ]:
        done = pod.ssh(user, command)
        assert done.returncode == 2 and message in done.stderr, (command, done.stderr)
    assert pod.exec("command -v tmux").strip() == "/usr/bin/tmux"


def test_ssh_as_root_and_dev_with_tty_heredoc_and_tmux(pods, keys):
    pod = pods(env={"SSH_PUBLIC_KEY": f"{pub(keys['b'])}\n{pub(keys['a'])}"})
    pod.create()
    for user in ("root", "dev"):
        done = pod.ssh(user, tty=True, identity=keys["b"], stdin=(
            "echo \"WHO=$(id -un) POD=$RUNPOD_POD_ID HF=$HF_HOME\"\n"
            "tmux new-session -d -s t 'env > /tmp/tmux-env-'$(id -un)'; sleep 1'\necho TMUX_STARTED\n"
            "exit\n"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"WHO={user} POD=pod-under-test HF=/workspace/.cache/huggingface" in done.stdout
        assert "TMUX_STARTED" in done.stdout
    for user in ("root", "dev"):
        tmux_env = pod.exec(f"for i in $(seq 50); do test -s /tmp/tmux-env-{user} && break; "
                            f"sleep 0.1; done; cat /tmp/tmux-env-{user}")
        assert "HDF5_USE_FILE_LOCKING=FALSE" in tmux_env and "RUNPOD_POD_ID=pod-under-test" in tmux_env
    # A plain command (no tty, no login shell) gets the same environment and the baked venv.
    out = pod.ssh_ok("dev", "echo $UV_CACHE_DIR $PIP_CACHE_DIR $TORCH_HOME $UV_LINK_MODE "
                     "$UV_PYTHON_INSTALL_DIR; command -v python")
    assert out.split() == ["/workspace/.cache/uv", "/workspace/.cache/pip", "/workspace/.cache/torch",
                           "hardlink", "/workspace/.local/share/uv/python", "/opt/venv/bin/python"]
    # Two sources, one key in both: each key once, for root and dev.
    for home in ("/root", "/home/dev"):
        assert len(pod.exec(f"cat {home}/.ssh/authorized_keys").splitlines()) == 2


def test_sigterm_runs_stop_hooks_within_the_budget(pods):
    pod = pods(env={"POD_STOP_BUDGET": "3"})
    pod.prepare_volume(
        "mkdir -p /workspace/.pod/hooks/stop.d /workspace/.pod/hooks/start.d && cd /workspace/.pod/hooks"
        " && printf '#!/bin/sh\\necho a >> /workspace/stopped\\n' > stop.d/10-a"
        " && printf '#!/bin/sh\\necho b >> /workspace/stopped; exit 3\\n' > stop.d/20-fails"
        " && printf '#!/bin/sh\\necho c >> /workspace/stopped; sleep 60\\n' > stop.d/30-hangs"
        " && printf '#!/bin/sh\\necho d >> /workspace/stopped\\n' > stop.d/40-after-budget"
        " && printf '#!/bin/sh\\necho never >> /workspace/stopped\\n' > stop.d/50-not-executable"
        " && printf '#!/bin/sh\\nexit 1\\n' > start.d/10-fails"
        " && printf '#!/bin/sh\\necho started > /workspace/started\\n' > start.d/20-ok"
        " && chmod +x stop.d/[1-4]0-* start.d/*")
    pod.create()
    log = wait_for_log(pod, r"hooks: start.d done \(2 run\)")
    assert "hooks: start.d/10-fails failed with status 1" in log
    assert pod.exec("cat /workspace/started") == "started\n"
    started = time.monotonic()
    docker("stop", "-t", "20", pod.name)
    took = time.monotonic() - started
    assert docker("inspect", "-f", "{{.State.ExitCode}}", pod.name).stdout.strip() == "0"
    assert took < 8, f"docker stop took {took:.1f} s with a 3 s budget"
    pod.start()
    assert pod.exec("cat /workspace/stopped") == "a\nb\nc\n"
    log = pod.log()
    assert "hooks: stop.d/20-fails failed with status 3" in log
    assert "hooks: stop.d/30-hangs stopped at the end of the stop budget" in log
    assert "hooks: stop.d/40-after-budget not run, the stop budget is spent" in log
    assert "stop.d/50-not-executable is not executable" in log


def test_twenty_restarts_leave_no_duplicates(pods, keys):
    pod = pods(env={"SSH_PUBLIC_KEY": pub(keys["b"]), "JUPYTER_PASSWORD": SECRET})
    pod.prepare_volume("mkdir -p /workspace/.pod && printf 'tmux\\ngit\\n' > /workspace/.pod/apt-packages.txt"
                       " && echo GIT_USER_NAME=Ada > /workspace/.env")
    pod.create()
    generated = ("/root/.ssh/authorized_keys /home/dev/.ssh/authorized_keys /etc/rp_environment "
                 "/etc/imagebuild/gitconfig /workspace/.pod/apt-packages.txt")
    static = "/etc/gitconfig /etc/bash.bashrc /etc/profile.d/20-imagebuild-pod.sh /workspace/.bashrc_pod"
    before = pod.exec(f"md5sum {generated} {static}")
    restarts = 20
    for _ in range(restarts):
        pod.restart()
    log = wait_for_apt_restore(pod, starts=restarts + 1)
    assert pod.exec(f"md5sum {generated} {static}") == before
    for path in generated.split():
        lines = [line for line in pod.exec(f"cat {path}").splitlines() if line.strip()]
        duplicated = [line for line, count in Counter(lines).items() if count > 1]
        assert not duplicated, f"{path}: {duplicated}"
    per_start = ("pod start:", "pod ready in", "step git: ok", "environment: /workspace/.env loaded",
                 "jupyter: JUPYTER_PASSWORD is set but this image has no JupyterLab",
                 "apt: restoring recorded packages")
    for marker in per_start:
        assert log.count(marker) == restarts + 1, marker
    for marker in ("pod stop: SIGTERM received", "stop: done in"):
        assert log.count(marker) == restarts, marker
    path = pod.ssh_ok("root", "echo $PATH").strip().split(":")
    assert len(path) == len(set(path)), path
    assert SECRET not in log + pod.logs()


def test_bad_inputs_are_logged_and_the_pod_still_comes_up(pods, keys):
    # An empty PUBLIC_KEY and a .env that cannot be read.
    empty = pods(env={"PUBLIC_KEY": ""})
    empty.prepare_volume("mkdir /workspace/.env")
    empty.create()
    log = empty.log()
    assert "ssh: no public key (set PUBLIC_KEY" in log
    assert "cannot read /workspace/.env (not a readable file): its variables are not loaded" in log
    assert empty.ssh("root", "true").returncode != 0

    # Garbage in PUBLIC_KEY beside a good key: the good one works, the garbage is not echoed.
    garbage = pods(env={"PUBLIC_KEY": f"{SECRET} not a key\n{pub(keys['a'])}\nssh-ed25519 !!!"})
    garbage.create()
    log = garbage.log()
    assert "ssh: PUBLIC_KEY line 1 is not an SSH public key; skipped" in log
    assert "ssh: PUBLIC_KEY line 3 is not an SSH public key; skipped" in log
    assert SECRET not in log + garbage.logs()
    assert garbage.ssh_ok("dev", "id -un").strip() == "dev"

    # A read-only /workspace: logs on the container disk, SSH still works.
    readonly = pods(mount="ro")
    readonly.prepare_volume("true")
    readonly.create()
    logs = readonly.logs()
    assert "/workspace is read-only or not writable" in logs
    assert "cannot keep host keys in /workspace/.pod/ssh" in logs
    assert readonly.ssh_ok("root", "echo $HDF5_USE_FILE_LOCKING").strip() == "FALSE"
    assert "pod ready in" in readonly.exec("cat /run/pod/logs/entrypoint.log")

    # No volume at all: a warning that nothing will survive.
    bare = pods(mount="")
    bare.create()
    assert "/workspace is not a mounted volume" in bare.log()
    assert bare.ssh_ok("root", "test -d /workspace/code && echo ok").strip() == "ok"


def test_jupyter_starts_only_with_a_password_and_keeps_it_off_the_command_line(pods):
    pod = pods(env={"JUPYTER_PASSWORD": SECRET})
    pod.create(start=False)
    script = ("#!/bin/sh\necho \"ARGS=$*\" > /tmp/jupyter-call\n"
              "[ \"$JUPYTER_TOKEN\" = \"$JUPYTER_PASSWORD\" ] && echo TOKEN-SET >> /tmp/jupyter-call\n"
              "pwd >> /tmp/jupyter-call\nsleep 600\n")
    subprocess.run(["docker", "cp", "-", f"{pod.name}:/usr/local/bin/"], input=_tar("jupyter-lab", script),
                   check=True, capture_output=True, timeout=60)
    pod.start()
    call = pod.exec("for i in $(seq 50); do test -s /tmp/jupyter-call && break; sleep 0.1; done; "
                    "sleep 0.2; cat /tmp/jupyter-call")
    assert "--port=8888" in call and "--ServerApp.root_dir=/workspace" in call
    assert "TOKEN-SET" in call and "/workspace" in call.splitlines()[-1]
    assert SECRET not in call.splitlines()[0]
    assert SECRET not in pod.log()


def _tar(name: str, text: str) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_command_runs_once_ready_with_stdin_and_its_exit_status(pod_image):
    script = "test -e /run/pod-ready && read line && echo \"got $line\"; exit 3"
    done = docker("run", "--rm", "-i", pod_image, "bash", "-c", script, input="hello\n", check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "got hello" in done.stdout
    assert "pod stop: the command exited with status 3" in done.stdout


def test_the_status_file_tells_the_host_ready_or_no_ssh(pod_image):
    """/run/pod-status (what `imagebuild run` waits on) is written before the command runs."""
    ready = docker("run", "--rm", pod_image, "cat", "/run/pod-status", check=False)
    assert "ready" in ready.stdout.splitlines(), ready.stdout + ready.stderr  # the command's own line
    # No sshd in the image: the entrypoint says so in the status file, and the command still runs.
    broken = docker("run", "--rm", "--entrypoint", "bash", pod_image, "-c",
                    "rm /usr/sbin/sshd; exec /usr/local/bin/pod-entrypoint cat /run/pod-status", check=False)
    lines = broken.stdout.splitlines()
    assert "no-ssh" in lines and "ready" not in lines, broken.stdout
    assert "pod not ready: sshd is not accepting connections" in broken.stdout


def test_projects_of_root_and_dev_share_the_uv_cache_on_the_volume(pods):
    """uv's cache is on the volume and shared: what root downloaded, dev's project
    hardlinks (no second download, no permission error), and both import the baked packages."""
    ca = ca_bundle()
    extra = ("-v", f"{ca}:/etc/ssl/host-ca.crt:ro", "-e", "SSL_CERT_FILE=/etc/ssl/host-ca.crt") if ca else ()
    pod = pods(extra=extra)
    pod.create()
    install = "source /workspace/.bashrc_pod && new-project {} >/dev/null && uv pip install -q six"
    pod.ssh_ok("root", install.format("alpha"))
    pod.ssh_ok("dev", install.format("personal-research/beta"))
    out = pod.ssh_ok("dev", "source /workspace/.bashrc_pod && proj beta && python -c 'import six, mujoco; "
                            "print(six.__file__)' && stat -c %h \"$(python -c 'import six; print(six.__file__)')\"")
    assert out.split() == ["/workspace/code/personal-research/beta/.venv/lib/python3.11/site-packages/six.py",
                           "3"]  # the cache's copy, alpha's and beta's: one inode


def test_sapien_home_is_on_the_volume_and_survives_a_recreate(pods):
    """The test image bakes no PhysX GPU library: ~/.sapien of root and dev is the
    volume's .cache/sapien, so what enable_gpu() downloads there is kept, once per volume."""
    pod = pods().create()
    assert pod.exec("readlink /root/.sapien /home/dev/.sapien").split() == ["/workspace/.cache/sapien"] * 2
    assert pod.exec("stat -c '%U %G %a' /workspace/.cache/sapien").strip() == "dev dev 2775"
    # What enable_gpu() does, as dev: mkdir ~/.sapien/physx/<version>, unpack the library.
    pod.ssh_ok("dev", "python3 -c \"import pathlib; p = pathlib.Path.home() / '.sapien/physx/v1'; "
                      "p.mkdir(parents=True, exist_ok=True); (p / 'libPhysXGpu_64.so').write_text('lib')\"")
    assert pod.exec("cat /root/.sapien/physx/v1/libPhysXGpu_64.so") == "lib"
    assert "sapien: ~/.sapien of root and dev on the volume" in pod.log()
    # Other first-use downloads and compile caches of the stack land on the volume too.
    assert pod.ssh_ok("dev", "echo $MS_SKIP_ASSET_DOWNLOAD_PROMPT $TRITON_CACHE_DIR $TORCHINDUCTOR_CACHE_DIR; "
                             "stat -c %U /workspace/.cache/triton").split() == [
        "1", "/workspace/.cache/triton", "/workspace/.cache/torchinductor", "dev"]
    pod.recreate()
    assert pod.exec("cat /root/.sapien/physx/v1/libPhysXGpu_64.so") == "lib"
    assert pod.exec("cat ~/.sapien/physx/v1/libPhysXGpu_64.so", user="dev") == "lib"
    # A ~/.sapien written on the container disk (the link removed) moves to the volume.
    pod.exec("rm /root/.sapien && mkdir -p /root/.sapien/physx/v2 && echo two > /root/.sapien/physx/v2/f")
    pod.restart()
    assert pod.exec("readlink /root/.sapien; cat /workspace/.cache/sapien/physx/v2/f") == (
        "/workspace/.cache/sapien\ntwo\n")
    assert "hidden" not in pod.log()  # nothing injected: the image's vendor files stay


LVP_ICD = '{"file_format_version": "1.0.0", "ICD": {"library_path": "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so", "api_version": "1.3.255"}}'
LLVMPIPE_DEVICES = "vulkaninfo --summary 2>/dev/null | grep -c 'deviceName.*llvmpipe'"


def test_vendor_files_the_runtime_injects_hide_the_image_copies(pods, tmp_path):
    """As the NVIDIA runtime injects the driver's vendor files at other paths: each
    device is listed once (lavapipe stands in for the GPU), whatever file wins is logged."""
    files = {
        "lvp.json": ("/etc/vulkan/icd.d/lvp_icd.x86_64.json", LVP_ICD),
        "icd.json": ("/etc/vulkan/icd.d/nvidia_icd.json",
                     '{"file_format_version": "1.0.1", "ICD": {"library_path": "libEGL_nvidia.so.0", "api_version": "1.4.312"}}'),
        "layers.json": ("/usr/share/vulkan/implicit_layer.d/nvidia_layers.json",
                        '{"file_format_version": "1.0.0", "layer": {"name": "VK_LAYER_NV_optimus", "library_path": "libGLX_nvidia.so.0"}}'),
        "egl.json": ("/etc/glvnd/egl_vendor.d/10_nvidia.json",
                     '{"file_format_version": "1.0.0", "ICD": {"library_path": "libEGL_nvidia.so.0"}}'),
        "broken.json": ("/etc/glvnd/egl_vendor.d/20_broken.json", "not json at all {"),
    }
    mounts: list[str] = []
    for name, (target, content) in files.items():
        (tmp_path / name).write_text(content)
        mounts += ["-v", f"{tmp_path / name}:{target}:ro"]
    image = pods().image
    # Without the entrypoint the loader lists lavapipe twice: the case to fix.
    twice = docker("run", "--rm", *mounts, "--entrypoint", "bash", image, "-c", LLVMPIPE_DEVICES, check=False)
    assert twice.stdout.strip() == "2", twice.stdout + twice.stderr
    pod = pods(extra=tuple(mounts)).create()
    for _ in range(2):  # the first start and a restart (the hidden copies are found again)
        assert pod.exec(LLVMPIPE_DEVICES).strip() == "1", pod.log()
        assert pod.ssh_ok("dev", LLVMPIPE_DEVICES).strip() == "1"
        log = pod.log().split("pod start:")[-1]
        hidden = {line.split("): ", 1)[1] for line in log.splitlines() if "the image's copy hidden" in line}
        assert hidden == {"/usr/share/vulkan/icd.d/lvp_icd.x86_64.json /usr/share/vulkan/icd.d/nvidia_icd.json",
                          "/etc/vulkan/implicit_layer.d/nvidia_layers.json",
                          "/usr/share/glvnd/egl_vendor.d/10_nvidia.json"}, log
        assert "/etc/vulkan/icd.d/nvidia_icd.json (runtime)" in log and "step vendor-files: ok" in log
        assert pod.exec("ls /usr/share/vulkan/icd.d/nvidia_icd.json*").split() == [
            "/usr/share/vulkan/icd.d/nvidia_icd.json.hidden-by-pod"]
        pod.restart()
