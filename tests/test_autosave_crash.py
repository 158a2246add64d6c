"""A pod killed without warning loses at most `every` + one save: real containers of
the test image, a workload that writes and commits every few seconds, `docker kill
-s KILL` at a random moment, and `pod-restore --latest --all` in a new pod on a new
volume. The remote is a volume of its own (off the pod: it outlives it)."""

from __future__ import annotations

import json
import random
import time

import pytest
from conftest import docker, unique_name
from image.pod import Pod
from test_entrypoint import keys  # noqa: F401 - keys is a fixture
from test_run import imagebuild, key, names, run_json  # noqa: F401 - fixtures and helpers

EVERY_S = 10
STEP_S = 2
PROJ = "/workspace/code/proj"

# Runs as dev in the pod: step N writes steps/step-N.txt (in git) and its time to
# /workspace/steps.log (the ground truth, outside git); every third step commits.
WORKLOAD = r"""
cd /workspace/code/proj
n=0
while :; do
    n=$((n + 1))
    printf 'step %s\n' "$n" >"steps/step-$n.txt"
    printf '%s %s\n' "$n" "$EPOCHREALTIME" >>/workspace/code/steps.log
    if [ $((n % 3)) = 0 ]; then git add -A && git commit -qm "step $n"; fi
    sleep %STEP%
done
""".replace("%STEP%", str(STEP_S))

SETUP = r"""
set -e
git init -q --bare -b main /remote/proj.git
git clone -q /remote/proj.git %DEST%
cd %DEST%
git config user.name Test; git config user.email test@example.invalid
mkdir -p steps
printf '#!/bin/sh\necho train\n' >train.sh; chmod +x train.sh
git add -A; git commit -qm start; git push -q -u origin main
"""


def _volume(name: str) -> str:
    docker("volume", "create", name)
    return name


@pytest.fixture
def remote_volume():
    name = _volume(unique_name("ib-remote"))
    yield name
    docker("volume", "rm", "-f", name, check=False)


def _pod(pod_image, keys, remote: str, **env) -> Pod:  # noqa: F811
    return Pod(pod_image, keys["a"], keys["known_hosts"], env=env,
               extra=("-v", f"{remote}:/remote"))


def _steps(text: str) -> dict[int, float]:
    out = {}
    for line in text.splitlines():
        n, _, when = line.partition(" ")
        if n.isdigit() and when:
            out[int(n)] = float(when)
    return out


def test_a_killed_pod_loses_at_most_every_plus_one_save(pod_image, keys, remote_volume):  # noqa: F811
    old = _pod(pod_image, keys, remote_volume, POD_SAVE_EVERY=f"{EVERY_S}s")
    new = _pod(pod_image, keys, remote_volume, RUNPOD_POD_ID="pod-after-crash")
    try:
        old.create()
        old.exec("mkdir -p /workspace/code && chown dev: /workspace/code /remote")
        old.exec(SETUP.replace("%DEST%", PROJ), user="dev")
        docker("exec", "-d", "-u", "dev", old.name, "bash", "-c", WORKLOAD)
        delay = random.uniform(2 * EVERY_S + 5, 3 * EVERY_S + 5)
        time.sleep(delay)
        docker("kill", "-s", "KILL", old.name)
        killed_at = time.time()

        truth = old.on_volume("cat /workspace/code/steps.log; echo ===; "
                              "cat /workspace/.pod/save-status.json; echo ===; "
                              "cat /workspace/.pod/logs/autosave.log")
        steps_log, status_json, autosave_log = truth.stdout.split("===\n")
        steps = _steps(steps_log)
        assert steps, truth.stdout + truth.stderr
        saves = json.loads(status_json)["last_save"]
        assert saves["mode"] in ("incremental", "full"), saves
        longest_save = max([float(w.split(" in ")[1].split(" s")[0]) for w in
                            autosave_log.splitlines() if " save: " in w] or [saves["seconds"]])

        new.create()
        new.exec("mkdir -p /workspace/code && chown dev: /workspace/code")
        new.exec(f"git clone -q /remote/proj.git {PROJ}", user="dev")
        restored = new.run("pod-restore --latest --all", user="dev", timeout=120)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        # The newest autosave is either the snapshot on the last commit, or older than a
        # commit pushed since (then that commit holds it all, or only what it lacks is
        # written onto it): either way the work tree below is the pod's last saved one.
        assert "autosave/pod-under-test/" in restored.stdout, restored.stdout
        listing = new.exec(f"cd {PROJ} && ls steps; stat -c '%a' train.sh")
        got = sorted(int(n.removeprefix("step-").removesuffix(".txt"))
                     for n in listing.split() if n.startswith("step-"))
        assert got == list(range(1, max(got) + 1)), got  # nothing missing before the last
        assert listing.split()[-1] == "755"  # the executable bit came back
        newest = max(got)
        contents = new.exec(f"cat {PROJ}/steps/step-{newest}.txt")
        assert contents == f"step {newest}\n"

        lost_s = killed_at - steps[newest]
        print(f"killed after {delay:.1f} s; restored step {newest} of {max(steps)}; "
              f"lost {lost_s:.1f} s of work (every {EVERY_S} s, longest save {longest_save:g} s)")
        assert lost_s <= EVERY_S + longest_save + STEP_S + 1, (lost_s, autosave_log)
    finally:
        for pod in (old, new):
            pod.destroy()


def test_save_every_reaches_the_pod_and_pod_status_shows_the_last_save(pod_image, names, key):  # noqa: F811
    name = names()
    pod = run_json("--image", pod_image, "--name", name, "--public-key", f"{key}.pub",
                   "--save-every", "10s")
    deadline = time.monotonic() + 90
    while True:
        done = imagebuild("pod", "status", f"local:{name}", "--json")
        assert done.returncode == 0, done.stderr
        save = json.loads(done.stdout)["save"]
        if save and save.get("last_save") or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert save["every_s"] == 10 and save["watcher"] == "running", save
    assert save["verdict"] in ("saved", "not saved"), save
    human = imagebuild("pod", "status", f"local:{name}")
    assert human.returncode == 0, human.stderr
    assert "autosave every 10 s" in human.stdout, human.stdout
    assert "unsaved  " in human.stdout, human.stdout
    login = docker("exec", "-u", "dev", pod["container"], "bash", "-lic", "true", check=False)
    assert "save     last " in login.stdout and "autosave every 10 s" in login.stdout, login
    bad = imagebuild("run", "--image", pod_image, "--name", names(), "--public-key",
                     f"{key}.pub", "--save-every", "soon")
    assert bad.returncode == 2 and "--save-every" in bad.stderr and "Traceback" not in bad.stderr


def test_pod_restore_from_the_host_brings_a_clone_back_in_a_local_pod(pod_image, names, key):  # noqa: F811
    name = names()
    pod = run_json("--image", pod_image, "--name", name, "--public-key", f"{key}.pub")
    box = pod["container"]

    def dev(script: str) -> str:
        done = docker("exec", "-u", "dev", box, "bash", "-c", script, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # A remote off the volume (the container disk), a clone with work only on the pod,
    # saved; then the clone is lost and cloned again: what a crash leaves.
    dev("set -e; git init -q --bare /tmp/r.git; mkdir -p /workspace/code; cd /workspace/code; "
        "git init -q -b main p; cd p; git -c user.name=d -c user.email=d@x commit -q --allow-empty -m one; "
        "git remote add origin /tmp/r.git; git push -q -u origin main; "
        "printf 'run\\n' > run.sh; chmod +x run.sh; pod-save > /dev/null || true; "
        "cd ..; rm -rf p; git clone -q /tmp/r.git p")
    done = imagebuild("pod", "restore", f"local:{name}", "--all", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and [r["repo"] for r in result["repos"]] == ["/workspace/code/p"], result
    assert any("autosave/" in line for line in result["repos"][0]["output"]), result
    # Written as the clone's owner (docker exec runs the script as root).
    assert dev("stat -c '%a %U' /workspace/code/p/run.sh; cat /workspace/code/p/run.sh") == "755 dev\nrun\n"
    missing = imagebuild("pod", "restore", f"local:{name}", "code/nothing")
    assert missing.returncode == 1 and "code/nothing: failed (exit 2)" in missing.stdout, missing.stdout
