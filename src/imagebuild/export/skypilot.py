"""SkyPilot task YAML that runs the pod image the pod's way.

SkyPilot (PyPI `skypilot`) launches, retries across regions and clouds, queues
managed jobs and tears down; imagebuild hands it the exact image and the pod's
conventions. Each task runs COMMAND after the pod's start steps, with
/workspace/.bashrc_pod sourced, the project's venv active and RESULTS_DIR set to
/workspace/results, then `pod-save`, so work is pushed before SkyPilot deletes the
machine. A sweep is one task per combination of values, each value in `envs`.

Secrets never enter a task: `--secret NAME` and the registry login are written as
SkyPilot secret references (`NAME: null`), filled at launch by
`sky launch --secret NAME`, which reads NAME from the launching shell.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from imagebuild import checks, contract
from imagebuild.errors import SpecError
from imagebuild.fileio import all_or_none, write_atomic
from imagebuild.image.spec import ENV_NAME

CLOUDS = ("runpod", "any")
# SkyPilot's private-registry login (sky/skylet/constants.py DOCKER_LOGIN_ENV_VARS).
DOCKER_LOGIN_SECRETS = ("SKYPILOT_DOCKER_USERNAME", "SKYPILOT_DOCKER_PASSWORD", "SKYPILOT_DOCKER_SERVER")
RESULTS_DIR = f"{contract.WORKSPACE}/results"
POD_BASHRC = contract.BASHRC_POD  # written by the entrypoint's start steps
SAVE_POLICY = contract.SAVE_CONFIG
MAX_TASKS = 1000

# Names whose values are credentials: those go through --secret, never into a file.
# Whole words of the name: TOKENIZERS_PARALLELISM or AUTHOR are not credentials.
_SECRET_NAME = re.compile(r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|PASS|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|"
                          r"CREDENTIALS?|AUTH|PAT)(?:_|$)", re.I)
# SkyPilot's cluster/task names.
_TASK_NAME = re.compile(r"[a-zA-Z]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?\Z")
_PROJECT = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}\Z")
# An rclone remote: "name:path" or a local path; written into a TOML string in the run.
# No "@" or ",": connection strings and URLs can carry credentials, which go in --secret.
_REMOTE = re.compile(r"[A-Za-z0-9_./:+=-][A-Za-z0-9_ ./:+=-]*\Z")


@dataclass(frozen=True)
class Export:
    image: str  # docker reference, e.g. ghcr.io/you/research-pod@sha256:...
    command: str  # shell command line
    name: str
    accelerators: dict[str, int] = field(default_factory=dict)  # SkyPilot name -> count
    cloud: str = "runpod"
    envs: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    sweep: tuple[tuple[str, tuple[str, ...]], ...] = ()
    idle_minutes: int | None = None
    project: str | None = None
    private_registry: bool = False
    results_to: str | None = None  # rclone remote that pod-save copies RESULTS_DIR to


def check_image(image: str) -> str:
    return checks.image_reference(image.removeprefix("docker:"))


def check_name(name: str) -> str:
    if not _TASK_NAME.match(name) or len(name) > 60:
        raise SpecError(f'--name: "{name}" is not a SkyPilot task name: a letter, then letters, '
                        "digits, - _ or ., at most 60 characters")
    return name


def check_project(project: str) -> str:
    if not _PROJECT.match(project) or ".." in project:
        raise SpecError(f'--project: expected a project under {contract.CODE_DIR} like NAME or '
                        f'group/NAME, got "{project}"')
    return project


def check_results_remote(remote: str) -> str:
    # The value is not echoed: it could hold a credential.
    if not _REMOTE.match(remote):
        raise SpecError("--results-to: expected an rclone remote like mybucket:pods/results or a "
                        "path, without credentials (give those as --secret RCLONE_CONFIG_...)")
    return remote


def _check_env_name(flag: str, name: str) -> str:
    if not ENV_NAME.match(name):
        raise SpecError(f'{flag}: "{name}" is not a variable name (letters, digits and _, '
                        "not starting with a digit)")
    if name in DOCKER_LOGIN_SECRETS:
        raise SpecError(f"{flag}: {name} is the registry login: pass --private-registry, and the "
                        "values at launch")
    return name


def parse_envs(items: list[str]) -> dict[str, str]:
    """``--env K=V`` items; a credential-like name is refused (use --secret)."""
    envs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SpecError(f'--env: expected K=V, got "{name}" (a secret? use --secret {name})')
        _check_env_name("--env", name)
        if _SECRET_NAME.search(name):
            raise SpecError(f"--env: {name} looks like a credential and would be written into the "
                            f"task file: use --secret {name} (given at launch: sky launch --secret {name})")
        if name in envs:
            raise SpecError(f"--env: {name} is given twice")
        envs[name] = value
    return envs


def parse_secrets(names: list[str]) -> tuple[str, ...]:
    for name in names:
        if "=" in name:
            raise SpecError(f"--secret: pass the name only ({name.partition('=')[0]}); its value "
                            "is read from your shell at launch, never written to the file")
        _check_env_name("--secret", name)
    return tuple(dict.fromkeys(names))


def parse_sweeps(items: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``--sweep K=V1,V2,...`` items: the variable and its distinct values."""
    sweeps: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, joined = item.partition("=")
        values = tuple(v.strip() for v in joined.split(","))
        if not sep or not joined.strip() or "" in values:
            raise SpecError(f'--sweep: expected K=V1,V2,... with non-empty values, got "{item}"')
        _check_env_name("--sweep", name)
        if _SECRET_NAME.search(name):
            raise SpecError(f"--sweep: {name} looks like a credential: sweep values are written "
                            "into the task files")
        if len(set(values)) != len(values):
            raise SpecError(f"--sweep: {name} repeats a value: {joined}")
        if name in sweeps:
            raise SpecError(f"--sweep: {name} is given twice")
        sweeps[name] = values
    return tuple(sweeps.items())


def _results_policy(remote: str) -> list[str]:
    """A save.toml that has pod-save copy RESULTS_DIR to ``remote`` (unless the volume has one)."""
    return [
        "# Results are data, not code: pod-save copies them with rclone (save.toml [[sync]]).",
        f"if [ ! -e {SAVE_POLICY} ]; then",
        f"  mkdir -p {contract.POD_DIR} && cat > {SAVE_POLICY} <<'IMAGEBUILD_SAVE_TOML'",
        "[[sync]]",
        'path = "results"',
        f'remote = "{remote}"',
        "IMAGEBUILD_SAVE_TOML",
        "fi",
    ]


def run_script(command: str, project: str | None, results_to: str | None = None) -> str:
    """The task's `run`: the pod's conventions around COMMAND, then pod-save.

    Without ``results_to`` (or a save.toml of the user's), results in RESULTS_DIR are
    unsaved: pod-save says so and the task fails rather than lose them silently."""
    lines = [
        "# imagebuild: the pod's start steps, environment and project; COMMAND; then pod-save.",
        f"if [ ! -r {POD_BASHRC} ]; then",
        "  # Clouds other than RunPod start the image with --entrypoint=/bin/bash: run its start",
        "  # steps (no stop-time save: nothing is there yet).",
        f"  {contract.STOP_BUDGET_ENV}=0 /usr/local/bin/pod-entrypoint true >/dev/null 2>&1 ||",
        f'    echo "imagebuild: pod start steps failed ({contract.LOG_DIR}/entrypoint.log)" >&2',
        "fi",
        f". {POD_BASHRC}",
        f"mkdir -p {RESULTS_DIR}",
        f"export RESULTS_DIR={RESULTS_DIR}",
    ]
    if results_to:
        lines += _results_policy(results_to)
    if project:
        code = f"{contract.WORKSPACE}/code/{project}"
        lines += [
            "# SkyPilot's workdir (the current folder, when synced) is the project unless the",
            "# volume has it.",
            f'if [ ! -e {code} ] && [ "$PWD" != "$HOME" ] && [ -n "$(ls -A)" ]; then',
            f'  mkdir -p "$(dirname {code})" && ln -s "$PWD" {code}',
            "fi",
            f"proj {project} || exit 1",
        ]
    lines += [
        "status=0",
        "(",
        command,
        ") || status=$?",
        'echo "imagebuild: the command exited with status $status; saving with pod-save" >&2',
        "if ! pod-save; then",
        '  echo "imagebuild: pod-save failed: not everything was pushed (see above)" >&2',
        '  [ "$status" -ne 0 ] || status=1',
        "fi",
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def _resources(export: Export) -> dict:
    resources: dict = {}
    if export.cloud == "runpod":
        resources["cloud"] = "runpod"
    if len(export.accelerators) == 1:
        [(name, count)] = export.accelerators.items()
        resources["accelerators"] = f"{name}:{count}"
    elif export.accelerators:  # SkyPilot picks any one of them
        resources["accelerators"] = dict(export.accelerators)
    resources["image_id"] = f"docker:{export.image}"
    if export.idle_minutes is not None:
        resources["autostop"] = {"idle_minutes": export.idle_minutes, "down": True}
    return resources


def task(export: Export, name: str, sweep_envs: dict[str, str]) -> dict:
    """One SkyPilot task as a dict, in the order SkyPilot's docs write it."""
    body: dict = {"name": name, "resources": _resources(export)}
    envs = {**export.envs, **sweep_envs}
    if envs:
        body["envs"] = envs
    secrets = list(export.secrets)
    if export.private_registry:
        secrets += [s for s in DOCKER_LOGIN_SECRETS if s not in secrets]
    if secrets:
        body["secrets"] = dict.fromkeys(secrets)  # null: filled by `sky launch --secret NAME`
    body["run"] = run_script(export.command, export.project, export.results_to)
    return body


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def tasks(export: Export) -> list[dict]:
    """One task, or one per combination of the sweep values (names unique)."""
    names = [n for n, _ in export.sweep]
    clash = [n for n in names if n in export.envs]
    if clash:
        raise SpecError(f"--sweep: {clash[0]} is also given with --env; give it once")
    combos = list(itertools.product(*(values for _, values in export.sweep)))
    if len(combos) > MAX_TASKS:
        raise SpecError(f"--sweep: {len(combos)} combinations; at most {MAX_TASKS} tasks per export")
    out, seen = [], set()
    for combo in combos:
        values = dict(zip(names, combo, strict=True))
        name = export.name
        if values:
            suffix = _slug("-".join(f"{k}-{v}" for k, v in values.items()))
            name = f"{export.name}-{suffix}"[:60].rstrip("-_.")
        base, number = name, 1
        while name.lower() in seen:
            number += 1
            name = f"{base[:55]}-{number}"
        seen.add(name.lower())
        out.append(task(export, name, values))
    return out


def dump(body: dict) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    return yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write(bodies: list[dict], out: Path, folder: bool) -> list[Path]:
    """The file ``out``; or, for a sweep or when ``out`` is a folder, NAME.yaml files in it."""
    if not folder and not out.is_dir():
        if not out.parent.is_dir():
            raise SpecError(f"--out: {out.parent} is not a folder")
        write_atomic(out, dump(bodies[0]))
        return [out]
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out: {out} is a file; a sweep writes one task per file into a folder")
    out.mkdir(parents=True, exist_ok=True)
    with all_or_none([]) as paths:
        for body in bodies:
            path = out / f"{body['name']}.yaml"
            write_atomic(path, dump(body))
            paths.append(path)
    return paths
