"""`pod create` from start to ready: register SSH keys, create, wait - and never
leave a pod billing when that fails part-way (timeout, ERROR, Ctrl-C, SIGTERM, an
API error).

A pod this command made that never got ready is *terminated*, not stopped: nothing
of the user's is on it yet, while a stopped pod keeps billing for its volume (RunPod
bills a stopped pod's volume at its stopped rate) and an ERROR pod cannot be stopped
at all. Its log is read first, for the reason. A network volume is not the pod's: it
stays.
"""

from __future__ import annotations

from collections.abc import Callable

from imagebuild.errors import UserError
from imagebuild.runpod import pods, sshkeys, volumes
from imagebuild.runpod.pods import CreateOptions, NotReady


class PodWentBad(UserError):
    """The created pod did not get ready and was terminated; ``seen`` its last status."""

    def __init__(self, message: str, seen: str | None, reason: str | None):
        super().__init__(message)
        self.seen = seen
        self.reason = reason


def launch(client, options: CreateOptions, *, wait: bool, timeout: float,
           on_event: Callable[[str], None], say: Callable[[str], None],
           show_logs: bool = True) -> dict:
    """The created (and, with ``wait``, ready) pod. A pod made here that does not
    get ready is terminated again, after its log is read for the reason."""
    if options.ssh_keys:
        added = sshkeys.register(client, options.ssh_keys)
        if added:
            say(f"imagebuild: registered {len(added)} SSH key(s) of this machine on your RunPod "
                "account (kept alongside the keys already there)")
    pods.ensure_name_free(client, options.name)
    pod = None
    sent_before = client.unsafe_sent
    try:
        pod = pods.create_pod(client, options, on_event, check_name=False)
        on_event(f"created {pod['id']} on {pod.get('gpu', {}).get('id', '?')}")
        if wait:
            pod = _wait(client, pod, timeout, on_event, show_logs)
        return pod
    except NotReady as error:
        reason = error.reason if error.reason is not None else pods.log_reason(client, error.pod["id"])
        discard(client, error.pod, say, f"it {_what(error)}")
        why = f"; its log: {reason}" if reason else ""
        raise PodWentBad(f"{_headline(error, timeout)}{why} - it was terminated, nothing bills for it now",
                         seen=error.seen, reason=reason) from None
    except KeyboardInterrupt:
        if pod is None and client.unsafe_sent > sent_before:
            # Interrupted with a create sent and unanswered: it may have made the pod,
            # which RunPod lists only seconds later.
            say(f"imagebuild: looking for pod {options.name} the interrupted create may have made "
                f"(up to {client.listing_lag:g} s)")
            pod = _quietly(lambda: pods.find_created(client, options.name))
        if pod is not None:
            discard(client, pod, say, "interrupted before it got ready")
        raise
    except BaseException:
        if pod is not None:
            discard(client, pod, say, "it did not get ready")
        raise


def discard(client, pod: dict, say: Callable[[str], None], why: str) -> None:
    """Terminate a pod this command made that never got ready; never raises (the
    original failure is what the user needs to see)."""
    from imagebuild.runpod.target import RunPodTarget

    kept = volumes.network_volume_id(pod)
    volume = f"; network volume {kept} is kept" if kept else "; nothing of yours was on it yet"
    say(f"imagebuild: terminating pod {pods.label(pod)} ({why}){volume}")
    try:
        RunPodTarget(client, pod).terminate()
    except Exception as error:  # noqa: BLE001 - reported, and the caller's error wins
        say(f"imagebuild: could not terminate pod {pods.label(pod)} ({error}); it may still be "
            f"billing: `imagebuild pod terminate {pod['id']} --force`")


def _what(error: NotReady) -> str:
    return f"went {error.seen}" if error.seen in ("ERROR", "EXITED") else "did not get ready"


def _headline(error: NotReady, timeout: float) -> str:
    pod = error.pod
    if error.seen in ("ERROR", "EXITED", "TERMINATED"):
        return f"pod {pods.label(pod)} went {error.seen} instead of starting"
    return f"pod {pods.label(pod)} not ready after {timeout:g} s; last seen: {error.seen}"


def _quietly(call):
    try:
        return call()
    except Exception:  # noqa: BLE001 - best effort on the way out
        return None


def _wait(client, pod: dict, timeout: float, on_event: Callable[[str], None],
          show_logs: bool) -> dict:
    from imagebuild.runpod.logs import Follower

    follower = Follower(client, pod["id"], lambda line: on_event(f"log: {line}")) if show_logs else None
    try:
        return pods.wait_until_ready(client, pod, timeout=timeout, on_event=on_event)
    finally:
        if follower is not None:
            follower.close()
