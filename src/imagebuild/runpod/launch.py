"""`pod create` from start to ready: register SSH keys, create, wait - and never
leave a pod billing when that fails part-way (timeout, Ctrl-C, SIGTERM, an API error)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from imagebuild.runpod import pods, sshkeys
from imagebuild.runpod.pods import CreateOptions


def launch(client, options: CreateOptions, *, wait: bool, timeout: float,
           on_event: Callable[[str], None], say: Callable[[str], None],
           show_logs: bool = True) -> dict:
    """The created (and, with ``wait``, ready) pod. A pod made here that does not
    get ready is stopped again: its volume is kept, its GPU no longer billed."""
    from imagebuild.pods.lifecycle import stop_again
    from imagebuild.runpod.target import RunPodTarget

    if options.ssh_keys:
        added = sshkeys.register(client, options.ssh_keys)
        if added:
            say(f"imagebuild: registered {len(added)} SSH key(s) of this machine on your RunPod "
                "account (kept alongside the keys already there)")
    pods.ensure_name_free(client, options.name)
    pod = None
    try:
        pod = pods.create_pod(client, options, on_event, check_name=False)
        on_event(f"created {pod['id']} on {pod.get('gpu', {}).get('id', '?')}")
        if wait:
            pod = _wait(client, pod, timeout, on_event, show_logs)
        return pod
    except BaseException:
        if pod is None:  # interrupted with the create in flight: it may exist
            with contextlib.suppress(Exception):
                pod = pods.find_by_name(client, options.name)
        if pod is not None:
            stop_again(RunPodTarget(client, pod), say, "it was created here and did not get ready")
        raise


def _wait(client, pod: dict, timeout: float, on_event: Callable[[str], None],
          show_logs: bool) -> dict:
    from imagebuild.runpod.logs import Follower

    follower = Follower(client, pod["id"], lambda line: on_event(f"log: {line}")) if show_logs else None
    try:
        return pods.wait_until_ready(client, pod, timeout=timeout, on_event=on_event)
    finally:
        if follower is not None:
            follower.close()
