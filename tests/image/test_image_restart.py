"""Restart recovery: the pod restarted (same container) and recreated (a new
container on the same /workspace volume, as a RunPod stop/resume does) keeps what
is on the volume and its SSH host keys, so users' known_hosts stay valid.

Runs last in the suite (file order): it restarts the shared service."""

from __future__ import annotations

import uuid

import pytest

from .pod import SERVICE

pytestmark = pytest.mark.docker


def test_restart_and_recreate_keep_workspace_and_host_keys(pod):
    marker = uuid.uuid4().hex
    pod.sh(f"echo {marker} > /workspace/restart-marker")
    keys = pod.host_key_fingerprints()
    first = pod.container_id()

    pod.compose.check("restart", SERVICE)
    pod.wait_ready()
    assert pod.container_id() == first
    assert pod.host_key_fingerprints() == keys, "host keys changed on restart"
    # Also over SSH with the pinned host key (StrictHostKeyChecking fails on a change).
    assert pod.sh("cat /workspace/restart-marker").strip() == marker

    pod.compose.check("stop", SERVICE)
    pod.compose.check("rm", "-f", SERVICE)
    pod.compose.check("up", "-d", SERVICE)
    pod.wait_ready()
    assert pod.container_id() != first, "compose did not recreate the container"
    assert pod.host_key_fingerprints() == keys, "host keys changed on a new container"
    assert pod.sh("cat /workspace/restart-marker").strip() == marker
    assert pod.sh("test -d /workspace/.pod/ssh && echo kept").strip() == "kept"
