"""/workspace/.pod/save.toml: what may be dropped, which secrets may be pushed, what
hooks save and where rclone copies data. Without the file, DEFAULT_TOML applies."""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re

from .config import DEFAULT_KEEP, UserError

DEFAULT_TOML = """\
# pod-save's policy for this pod's /workspace (see `pod-save --help`).
# Anything on the volume that is not pushed, synced or listed here makes pod-save
# fail, so `imagebuild pod terminate` refuses and nothing is lost by accident.

# Paths (globs, relative to /workspace; a folder covers everything in it) that may
# be lost with the volume because they can be downloaded or rebuilt again. Without
# this key, these defaults apply; .pod itself (hooks, logs, host keys) always may.
discard = [
    ".cache", ".local", ".uv", "**/__pycache__", "**/*.pyc", "**/.ipynb_checkpoints",
    "**/.venv", "**/venv", "venvs", "**/node_modules", "**/.pytest_cache",
    "datasets/*", "models/*",         # downloads; delete these lines if you make them
    ".claude", ".env", ".bashrc_pod",   # the pod's own state and credentials
    "wandb/debug*.log", "wandb/latest-run",
]

# Untracked files that look like secrets (.env, private keys, token files) are never
# pushed into a snapshot. List here the ones that may be (globs, relative to /workspace).
allow_secrets = []

# What your save hooks (.pod/hooks/save.d/NAME) save: counted as saved when the hook
# exits 0. Example:
# [hooks]
# "50-s3" = ["checkpoints"]

# Data that is not code (results/, your own models/) copied with rclone (`rclone copy`,
# never deleting on the remote, then checked with `rclone check --one-way`). Remotes
# come from rclone's config ($RCLONE_CONFIG, default /workspace/.pod/rclone.conf).
# [[sync]]
# path = "results"
# remote = "mybucket:pods/results"

# Continuous save (pod-autosave): how often, and how many of a clone's work-tree
# snapshots (autosave/<pod>/<time>-<clone>) stay on its remote; older ones are pruned.
# The pod's POD_SAVE_EVERY / POD_SAVE_KEEP variables win over these.
# [save]
# every = "15m"
# keep = 24
"""


@dataclasses.dataclass
class Sync:
    path: str  # relative to the workspace
    remote: str


@dataclasses.dataclass
class Policy:
    source: str  # the file, or "default"
    discard: list[str]
    allow_secrets: list[str]
    hooks: dict[str, list[str]]
    sync: list[Sync]
    keep: int = DEFAULT_KEEP  # [save] keep

    def as_report(self) -> dict:
        return {"source": self.source, "discard": self.discard,
                "allow_secrets": self.allow_secrets, "hooks": self.hooks,
                "sync": [dataclasses.asdict(s) for s in self.sync], "keep": self.keep}


def matches(rel: str, patterns: list[str]) -> str | None:
    """The first pattern that covers rel (itself or a folder above it)."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for pattern in patterns:
        pattern = pattern.strip("/")
        anywhere = pattern.startswith("**/")
        body = pattern[3:] if anywhere else pattern
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, body) or anywhere and \
                    fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], body) and "/" not in body:
                return pattern
    return None


def matcher(patterns: list[str]):
    """A fast test of one path against patterns, its folders not included: for a walk
    that has already tested the folders above. Returns the matching pattern or None."""
    compiled = []
    for pattern in patterns:
        pattern = pattern.strip("/")
        body = pattern[3:] if pattern.startswith("**/") else pattern
        regex = fnmatch.translate(body)
        if pattern.startswith("**/") and "/" not in body:
            regex = r"(?s:(?:.*/)?" + regex[4:]  # translate gives (?s:...)\Z
        compiled.append((re.compile(regex), pattern))

    def first(rel: str) -> str | None:
        return next((p for rx, p in compiled if rx.match(rel)), None)

    return first


# ------------------------------------------------------------------ TOML, a subset


def _parse_toml(text: str) -> dict:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # Ubuntu 22.04's python3 is 3.10
        return _mini_toml(text)
    return tomllib.loads(text)


_KEY = r'(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.-]+)'


def _mini_toml(text: str) -> dict:
    """Tables, arrays of tables, and key = string | number | bool | array of those."""
    import ast

    data: dict = {}
    table = data
    lines = iter(text.splitlines())
    for raw in lines:
        line = _strip_comment(raw)
        if not line:
            continue
        if m := re.fullmatch(r"\[\[\s*(" + _KEY + r")\s*\]\]", line):
            table = {}
            data.setdefault(_unquote(m.group(1)), []).append(table)
        elif m := re.fullmatch(r"\[\s*(" + _KEY + r")\s*\]", line):
            table = data.setdefault(_unquote(m.group(1)), {})
        elif m := re.fullmatch(r"(" + _KEY + r")\s*=\s*(.+)", line):
            value = m.group(2)
            while value.count("[") > value.count("]"):
                value += " " + _strip_comment(next(lines))
            value = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", value))
            table[_unquote(m.group(1))] = ast.literal_eval(value)
        else:
            raise ValueError(f"cannot read: {raw.strip()}")
    return data


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for ch in line:
        if quote is None and ch == "#":
            break
        if ch in "\"'":
            quote = None if quote == ch else (quote or ch)
        out.append(ch)
    return "".join(out).strip()


def _unquote(key: str) -> str:
    return key[1:-1] if key.startswith('"') else key


def _strings(path: str, data: dict, key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{path}: {key} must be a list of strings (globs under the workspace)")
    return value


# The pod's own state: its setup (hooks, logs, host keys, rclone.conf), Claude Code's
# login, caches and the env file. Never in an autosave, even when /workspace is itself
# a repository; so always re-creatable here, whatever save.toml's discard says.
OWN_STATE = [".pod", ".claude", ".cache", ".env"]
ALWAYS_DISCARD = OWN_STATE


def _defaults() -> list[str]:
    return _parse_toml(DEFAULT_TOML)["discard"]


def load(workspace: str) -> Policy:
    path = os.path.join(workspace, ".pod", "save.toml")
    try:
        with open(path, encoding="utf-8") as f:
            text, source = f.read(), path
    except FileNotFoundError:
        text, source = DEFAULT_TOML, "default"
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror}); fix its permissions") from e
    try:
        data = _parse_toml(text)
    except Exception as e:  # noqa: BLE001 -- tomllib and the fallback raise different errors
        raise UserError(f"{path}: not valid TOML ({e}); fix it or delete it for the defaults") \
            from e
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise UserError(f"{path}: [hooks] must map hook names to lists of paths")
    for name in hooks:
        _strings(path, hooks, name)
    syncs = data.get("sync", [])
    if not isinstance(syncs, list) or not all(
            isinstance(s, dict) and isinstance(s.get("path"), str)
            and isinstance(s.get("remote"), str) for s in syncs):
        raise UserError(f'{path}: each [[sync]] needs path = "results" and '
                        f'remote = "rclone-remote:folder"')
    save = data.get("save", {})
    keep = save.get("keep", DEFAULT_KEEP) if isinstance(save, dict) else None
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise UserError(f"{path}: [save] keep must be a whole number >= 1 "
                        f"(work-tree snapshots kept per clone on its remote)")
    discard = _strings(path, data, "discard") if "discard" in data else _defaults()
    # pod-save's own folder (this file, hooks, logs, host keys) is the pod's setup.
    return Policy(source, ALWAYS_DISCARD + discard, _strings(path, data, "allow_secrets"),
                  hooks, [Sync(s["path"].strip("/"), s["remote"]) for s in syncs], keep)
