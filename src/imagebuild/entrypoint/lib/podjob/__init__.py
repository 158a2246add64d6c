"""Jobs on the pod (`pod-job`, driven by `imagebuild pod run/jobs/tail/kill`).

A job is a command in a tmux session of its own (``job-<name>``), run by
``pod-job _run`` in a login bash with the pod's helpers and /workspace/.bashrc_pod,
its output appended to ``<job log dir>/<name>.log``. Three small files in the jobs
folder say where it is, each written whole by one writer:
  <name>.json  what was asked (start): command, user, project, log, a run id;
  <name>.pid   the runner's pid, that process's start time and the boot id (_run);
  <name>.exit  exit code and end time (_run, or kill).
A job whose runner is gone without an exit file was lost (a restart or a crash);
pid, start time and boot id together tell a live runner from a reused pid. Every
file carries the run id: a new job of the same name never reads an old one's state.
Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import time

from podsave.contract import names

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STARTING_GRACE_S = 10.0  # a record with no runner yet: starting, then lost
LOST_LINES = 10  # the last lines of a lost job's log that `pod jobs` shows


def jobs_dir() -> str:
    """Empty outside an image (no contract.env, no POD_JOBS_DIR): no jobs there."""
    return os.environ.get("POD_JOBS_DIR") or names().get("POD_JOBS_DIR", "")


def log_dir() -> str:
    return os.environ.get("POD_JOB_LOG_DIR") or names().get("POD_JOB_LOG_DIR", "")


def session(name: str) -> str:
    return names().get("POD_JOB_SESSION_PREFIX", "job-") + name


def path(name: str, kind: str) -> str:
    return os.path.join(jobs_dir(), f"{name}.{kind}")


def write(name: str, kind: str, text: str) -> None:
    """Whole or not at all: a reader never sees half a file."""
    target = path(name, kind)
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, target)


def _read(name: str, kind: str) -> str | None:
    try:
        with open(path(name, kind), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return "-"


def process_start(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), None when it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 and fields[0] not in ("Z", "X") else None


def record(name: str) -> dict | None:
    text = _read(name, "json")
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def runner(name: str, run_id: str) -> dict | None:
    """The live runner of this run, from <name>.pid; None when gone or another run's."""
    fields = (_read(name, "pid") or "").split()
    if len(fields) < 5 or fields[3] != run_id:
        return None
    pid, started_ticks, boot, _, started = fields[:5]
    alive = boot == boot_id() and process_start(int(pid)) == started_ticks
    return {"pid": int(pid), "started": float(started), "alive": alive}


def exit_of(name: str, run_id: str) -> dict | None:
    fields = (_read(name, "exit") or "").split()
    if len(fields) < 3 or fields[2] != run_id:
        return None
    return {"exit_code": int(fields[0]), "ended": float(fields[1]),
            "killed": len(fields) > 3 and fields[3] == "killed"}


def line_offset(log: str, count: int) -> int:
    """The byte of ``log`` where its last ``count`` lines start (its size for 0)."""
    try:
        with open(log, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - 64 * 1024)
            handle.seek(start)
            tail = handle.read()
    except OSError:
        return 0
    end = len(tail) - 1 if tail.endswith(b"\n") else len(tail)  # a last line without \n counts
    for _ in range(count):
        end = tail.rfind(b"\n", 0, end)
        if end < 0:
            return start if start == 0 else start + tail.find(b"\n") + 1
    return start + end + 1 if count else size


def last_lines(log: str, count: int) -> list[str]:
    try:
        with open(log, "rb") as handle:
            handle.seek(line_offset(log, count))
            lines = handle.read().decode("utf-8", "replace").split("\n")
    except OSError:
        return []
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return lines[-count:] if count else []


def state(name: str) -> dict | None:
    """What `pod jobs` shows of one job: running, exited (code), starting or lost."""
    rec = record(name)
    if rec is None:
        return None
    run_id = rec["run_id"]
    done, live = exit_of(name, run_id), runner(name, run_id)
    job = {k: rec.get(k) for k in ("name", "command", "user", "project", "log", "requested")}
    job.update(started=live["started"] if live else rec.get("requested"), ended=None,
               exit_code=None, pid=None)
    if done:
        job.update(state="killed" if done["killed"] else "exited", ended=done["ended"],
                   exit_code=done["exit_code"])
    elif live and live["alive"]:
        job.update(state="running", pid=live["pid"])
    elif live is None and time.time() - rec.get("requested", 0) < STARTING_GRACE_S:
        job.update(state="starting")
    else:
        job.update(state="lost", last_lines=last_lines(rec["log"], LOST_LINES))
    end = job["ended"] or (time.time() if job["state"] == "running" else None)
    job["duration"] = round(end - job["started"], 3) if end and job["started"] else None
    return job


def all_states() -> list[dict]:
    if not jobs_dir():
        return []
    try:
        found = sorted(f[:-5] for f in os.listdir(jobs_dir()) if f.endswith(".json"))
    except OSError:
        return []
    jobs = [state(name) for name in found]
    return sorted((j for j in jobs if j), key=lambda j: j.get("requested") or 0)


def running() -> list[str]:
    """Names of the jobs running now (or about to): what keeps a pod busy."""
    return [j["name"] for j in all_states() if j["state"] in ("running", "starting")]


def dump(value) -> str:
    return json.dumps(value, sort_keys=True)
