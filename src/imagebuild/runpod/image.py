"""Which image a new pod runs, and the CUDA version it needs from the host's driver.

The default image is the exact digest `imagebuild push` recorded next to the
spec (``imagebuild.project``, the one place that answers). Its CUDA version (the
``imagebuild.cuda`` label, also recorded at push) becomes the pod's CUDA floor, so
RunPod only places it on hosts whose driver can run it.
"""

from __future__ import annotations

import re

from imagebuild import contract
from imagebuild.errors import UserError


def cuda_floor(image: str, pushed_cuda: str | None = None) -> str | None:
    """``major.minor`` the image needs: ``pushed_cuda`` (the push record's, when the image
    is the pushed one), else a local image's label."""
    if pushed_cuda:
        return normalize_cuda(pushed_cuda)
    label = local_label(image, contract.LABEL_CUDA)
    return normalize_cuda(label) if label else None


def normalize_cuda(version: str) -> str | None:
    """ "12.8.1" -> "12.8"; anything else unusable -> None."""
    match = re.match(r"^\s*(\d+)\.(\d+)", version)
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


def local_label(image: str, label: str) -> str | None:
    """A label of a locally present image; None when absent or Docker is unreachable."""
    from imagebuild.engine import connect

    try:
        found = connect().image(image)
    except UserError:  # no engine here: no label to read, so no floor - not an error
        return None
    return (found.labels or {}).get(label) if found is not None else None
