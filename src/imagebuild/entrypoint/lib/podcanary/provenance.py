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
        "canary": {"verdict": report["verdict"], "seconds": report["seconds"],
                   "checks": {check["name"]: check["verdict"] for check in report["checks"]}},
    }


def append(report: dict) -> None:
    """Appended to the volume's file (best effort: a read-only volume keeps none), and
    W&B's line rewritten."""
    names = contract.names()
    found = record(report)
    path = names["POD_PROVENANCE"]
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(found, sort_keys=True) + "\n")
    except OSError:
        pass
    write_atomic(names["POD_WANDB_NOTES_FILE"], notes(found) + "\n")


def notes(found: dict) -> str:
    """The record in one line (W&B shows a run's notes beside it)."""
    image = found["image"]
    gpus = ", ".join(gpu["name"] for gpu in found["gpus"]) or "no NVIDIA GPU"
    where = " ".join(f"{key} {value}" for key, value in found["runpod"].items() if key != "gpu_count")
    return (f"pod-provenance: image {image.get('ref') or image.get('name', '?')} "
            f"({image.get('digest') or image.get('id') or 'digest unknown'}, lock "
            f"{image.get('lock_sha256', '?')[:12]}); {gpus}, driver {found['driver'] or '-'}, "
            f"CUDA {found['cuda'] or '-'}; {'RunPod ' + where + '; ' if where else ''}"
            f"canary {found['canary']['verdict']}; started {found['started']}")


def write_atomic(path: str, text: str) -> None:
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path + ".tmp", 0o644)  # dev's runs read it too
        os.replace(path + ".tmp", path)
    except OSError:
        pass
