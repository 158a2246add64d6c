"""The provenance record: one JSON line per start in the volume's provenance.jsonl,
naming the image, the host and the GPUs a result came from."""

from __future__ import annotations

import json
import os

from podsave import contract

# What RunPod tells a pod about itself (its environment variables), where it does.
RUNPOD_VARIABLES = {"pod_id": "RUNPOD_POD_ID", "machine_id": "RUNPOD_MACHINE_ID",
                    "data_center": "RUNPOD_DC_ID", "gpu_count": "RUNPOD_GPU_COUNT"}


def image_identity() -> dict:
    """What the host set about the image (contract.IMAGE_*_ENV): ref, digest, id."""
    names = contract.names()
    return {key: os.environ.get(names.get(var, ""), "") for key, var in
            (("ref", "POD_IMAGE_REF_VAR"), ("digest", "POD_IMAGE_DIGEST_VAR"), ("id", "POD_IMAGE_ID_VAR"))}


def record(report: dict) -> dict:
    return {
        "started": report["started"],
        "image": {**report["image"], **image_identity()},
        "gpus": [{"name": gpu["name"], "uuid": gpu["uuid"]} for gpu in report["gpus"]],
        "driver": report["driver"]["version"],
        "cuda": report["driver"]["cuda"],
        "runpod": {key: os.environ[name] for key, name in RUNPOD_VARIABLES.items() if os.environ.get(name)},
        "canary": {"verdict": report["verdict"],
                   "checks": {check["name"]: check["verdict"] for check in report["checks"]}},
    }


def append(report: dict) -> None:
    """Appended to the volume's file (best effort: a read-only volume keeps none)."""
    path = contract.names()["POD_PROVENANCE"]
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record(report), sort_keys=True) + "\n")
    except OSError:
        pass
