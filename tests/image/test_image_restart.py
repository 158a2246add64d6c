"""Restart recovery of the image under test, run as a compose service: the pod
restarted (same container) and recreated (a new container on the same /workspace
volume, as a RunPod stop/resume does) keeps what is on the volume and its SSH host
keys. A key type may be added on a later start (the entrypoint makes the RSA key in
the background); no key a client saw may change or go away.

On the locally built test pod tests/test_entrypoint.py proves this (and more), so
this runs only on an image given with --image / $IMAGEBUILD_TEST_IMAGE: the CUDA
images GitHub Actions builds, where nothing else restarts a pod.

Runs last in the suite (file order): it restarts the shared service."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.docker


def test_restart_and_recreate_keep_workspace_and_host_keys(pod, image_given):
    marker = uuid.uuid4().hex
    pod.sh(f"echo {marker} > /workspace/restart-marker")
    keys = pod.host_key_fingerprints()
    first = pod.name

    pod.restart()
    assert pod.name == first
    restarted = pod.host_key_fingerprints()
    assert keys <= restarted, f"host keys changed on restart: {keys} -> {restarted}"
    # Also over SSH with the pinned host key (StrictHostKeyChecking fails on a change).
    assert pod.sh("cat /workspace/restart-marker").strip() == marker

    pod.recreate()
    assert pod.name != first, "compose did not recreate the container"
    recreated = pod.host_key_fingerprints()
    assert restarted <= recreated, f"host keys changed on a new container: {restarted} -> {recreated}"
    assert pod.sh("cat /workspace/restart-marker").strip() == marker
    assert pod.sh("test -d /workspace/.pod/ssh && echo kept").strip() == "kept"
