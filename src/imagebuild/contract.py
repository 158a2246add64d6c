"""The host-image contract: every name both imagebuild (the host) and the image
(entrypoint, pod-save, build scripts) rely on, defined here once.

The host imports these constants; the image gets them as ``contract.env``
(rendered by :func:`env_file` into the runtime layer next to the entrypoint),
which the shell scripts source and the stdlib pod-save package parses. A test
checks that no other Python module spells one of these values.
"""

from __future__ import annotations

import shlex

# The volume and its layout.
WORKSPACE = "/workspace"
POD_DIR = "/workspace/.pod"  # the pod's own state on the volume
LOG_DIR = "/workspace/.pod/logs"
FALLBACK_LOG_DIR = "/run/pod/logs"  # when /workspace is not writable
CODE_DIR = "/workspace/code"  # projects; `pod run --sync` mirrors a local tree into CODE_DIR/<repo>
SSH_STORE = "/workspace/.pod/ssh"  # the pod's sshd host keys and extra authorized_keys (0700)
HOOKS_DIR = "/workspace/.pod/hooks"  # the user's start.d/ and stop.d/ hooks
SAVE_CONFIG = "/workspace/.pod/save.toml"  # pod-save's policy: discard, sync, secrets allowed
BASHRC_POD = "/workspace/.bashrc_pod"  # the user's file every interactive shell sources

# Jobs (`imagebuild pod run`, the in-image `pod-job`): one record per job, its output.
JOBS_DIR = "/workspace/.pod/jobs"  # <job>.json: command, user, pid, start, exit code, end
JOB_LOG_DIR = "/workspace/results/logs"  # <job>.log
JOB_SESSION_PREFIX = "job-"  # the job's tmux session: job-<job>
SYNC_DIR = "/workspace/.pod/sync"  # <repo>.json: what the last `pod run --sync` put there

# What the entrypoint tells the host (all on the container disk: a restart clears them).
READY_MARKER = "/run/pod-ready"  # exists once sshd accepts connections (users' scripts test it)
STATUS_FILE = "/run/pod-status"  # one word, one of the STATUS_* below
STATUS_STARTING = "starting"
STATUS_READY = "ready"
STATUS_NO_SSH = "no-ssh"  # the start steps ran but sshd never accepted a connection
# The GPU canary (pod-canary), run by the entrypoint once the pod is ready: its report, and
# the status file's second line ("canary: pass|fail|skip|running ..."; the first stays one word).
CANARY_RESULT = "/run/pod-canary.json"
CANARY_STATUS_PREFIX = "canary:"
CANARY_MOTD = "/run/pod-canary.motd"  # a line for login shells, only while a check failed
# One JSON line per start: which image, host, driver and GPUs a result came from.
PROVENANCE = "/workspace/.pod/provenance.jsonl"

# pod-save --json's shape ("format"): the image's lib/podsave/report.py renders it on
# the pod and, loaded from this package, on the host; a test holds the two to this.
SAVE_REPORT_FORMAT = 1

# Idle stop: keepalive leases and the watcher's one-line state.
KEEPALIVE_DIR = "/run/pod-keepalive"
IDLE_STATE = "/run/pod-idle-watch"
# Set to 1 in a local pod's environment (`imagebuild run`). Local pods get RUNPOD_POD_ID
# too; this tells the idle watcher that ending the container is a stop here, while on
# RunPod a container whose PID 1 exits is restarted on the same (billing) GPU.
LOCAL_POD_VAR = "IMAGEBUILD_LOCAL_POD"

# The variables the host sets for the image (pod create/run flags, a RunPod template):
# the idle stop (--idle-stop, --idle-stop-requires-save) and the stop steps' time budget.
IDLE_STOP_ENV = "POD_IDLE_STOP"
IDLE_REQUIRES_SAVE_ENV = "POD_IDLE_REQUIRES_SAVE"
STOP_BUDGET_ENV = "POD_STOP_BUDGET"  # seconds for the stop hooks and the save on SIGTERM

# Continuous save: the interval the host sets (pod create/run --save-every) and the
# save status record every pod-save writes (on the volume: it outlives a crash).
SAVE_EVERY_ENV = "POD_SAVE_EVERY"
SAVE_STATUS = "/workspace/.pod/save-status.json"

# Host-set: what the host knows of the image a pod runs (an image cannot know its own
# registry digest: the push computes it after the build). `pod create` sets the reference
# and, when it names one, the digest; a local pod (`imagebuild run`) also the engine's
# image id. pod-canary's provenance record and pod-save's autosave commits name them.
IMAGE_REF_ENV = "POD_IMAGE_REF"
IMAGE_DIGEST_ENV = "POD_IMAGE_DIGEST"  # sha256:... of the reference, "" when it has none
IMAGE_ID_ENV = "POD_IMAGE_ID"  # sha256:... the local engine's image id (local pods)
# The latest provenance record in one line for W&B: every shell exports it as WANDB_NOTES
# (unless set), so a run started in the pod names its image and host. (WANDB_CONFIG_PATHS
# would carry the whole record, but wandb 0.31 refuses it as a string: wandb.init fails.)
WANDB_NOTES_FILE = "/run/pod-provenance.wandb-notes"

# Where the image keeps imagebuild's own files.
ENTRYPOINT_DIR = "/usr/local/lib/imagebuild/entrypoint"
VERSIONS_DIR = "/usr/local/share/imagebuild/versions"  # per-layer resolved versions
BUILD_ENV_SH = "/usr/local/lib/imagebuild/build-env.sh"  # the build steps' shell library
VENV = "/opt/venv"  # the baked Python environment (python layer), on the container disk

# The user that runs claude --dangerously-skip-permissions; its uid owns files on the volume.
DEV_USER = "dev"
DEV_UID = 1000

# Image labels (read back by push, pod create and imagebuild diff).
LABEL_CUDA = "imagebuild.cuda"
LABEL_LAYER = "imagebuild.layer"
LABEL_VERSIONS = "imagebuild.versions"

# The names the image sees, in contract.env: shell variable -> value.
SHELL_NAMES: dict[str, object] = {
    "POD_WS": WORKSPACE,
    "POD_SSH_STORE": SSH_STORE,
    "POD_HOOKS_DIR": HOOKS_DIR,
    "POD_SAVE_CONFIG": SAVE_CONFIG,
    "POD_BASHRC": BASHRC_POD,
    "POD_VOLUME_LOG_DIR": LOG_DIR,
    "POD_FALLBACK_LOG_DIR": FALLBACK_LOG_DIR,
    "POD_CODE_DIR_DEFAULT": CODE_DIR,
    "POD_JOBS_DIR": JOBS_DIR,
    "POD_JOB_LOG_DIR": JOB_LOG_DIR,
    "POD_JOB_SESSION_PREFIX": JOB_SESSION_PREFIX,
    "POD_SYNC_DIR": SYNC_DIR,
    "POD_READY_MARKER": READY_MARKER,
    "POD_STATUS_FILE": STATUS_FILE,
    "POD_STATUS_STARTING": STATUS_STARTING,
    "POD_STATUS_READY": STATUS_READY,
    "POD_STATUS_NO_SSH": STATUS_NO_SSH,
    "POD_CANARY_RESULT": CANARY_RESULT,
    "POD_CANARY_STATUS_PREFIX": CANARY_STATUS_PREFIX,
    "POD_CANARY_MOTD": CANARY_MOTD,
    "POD_PROVENANCE": PROVENANCE,
    "POD_KEEPALIVE_DEFAULT": KEEPALIVE_DIR,
    "POD_IDLE_STATE": IDLE_STATE,
    "POD_LOCAL_VAR": LOCAL_POD_VAR,
    "POD_SAVE_STATUS": SAVE_STATUS,
    "POD_IMAGE_REF_VAR": IMAGE_REF_ENV,
    "POD_IMAGE_DIGEST_VAR": IMAGE_DIGEST_ENV,
    "POD_IMAGE_ID_VAR": IMAGE_ID_ENV,
    "POD_WANDB_NOTES_FILE": WANDB_NOTES_FILE,
    "POD_VERSIONS_DIR": VERSIONS_DIR,
    "POD_VENV": VENV,
    "POD_DEV_USER": DEV_USER,
    "POD_DEV_UID": DEV_UID,
}

ENV_FILE = "contract.env"  # beside the entrypoint's bin/, lib/ and steps/
# The names the build steps use (build-env.sh, in the system layer): only these are
# rendered into it (build.env), so a name only the pod uses changes only the runtime layer.
BUILD_NAMES = ("POD_VERSIONS_DIR",)
# What one image is (its CUDA, spec, lock), beside contract.env: pod-canary's floor, provenance.
IMAGE_ENV_FILE = "image.env"


def env_file() -> str:
    """contract.env (the runtime layer): plain ``NAME=value`` lines, sourced by bash and
    parsed by pod-save."""
    return _env_lines(SHELL_NAMES)


def build_env_file() -> str:
    """build.env (the system layer, above build-env.sh): the names of BUILD_NAMES only."""
    return _env_lines({name: SHELL_NAMES[name] for name in BUILD_NAMES})


def _env_lines(names: dict[str, object]) -> str:
    lines = ["# Generated by imagebuild from imagebuild/contract.py: do not edit."]
    lines += [f"{name}={shlex.quote(str(value))}" for name, value in names.items()]
    return "\n".join(lines) + "\n"


def image_env_file(*, name: str, cuda: str | None, spec_hash: str, lock_sha256: str) -> str:
    """image.env: the facts of one image that the pod reports about itself."""
    values = {"POD_IMAGE_NAME": name, "POD_IMAGE_CUDA": cuda or "", "POD_IMAGE_SPEC_HASH": spec_hash,
              "POD_IMAGE_LOCK_SHA256": lock_sha256}
    lines = ["# Generated by imagebuild from the spec and lock of this image: do not edit."]
    lines += [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
