"""The pod lifecycle on RunPod: create, find, list, stop, start, terminate, wait for SSH.

Every function takes a ``Client`` and returns RunPod's own pod objects (dicts as
the API sends them), so ``--json`` can print them unchanged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagebuild import contract
from imagebuild.errors import UserError
from imagebuild.pods import ssh as ssh_mod
from imagebuild.runpod.client import RunPodError, listed
from imagebuild.runpod.volume_api import mounts, network_volume_id

SSH_PORT = "22/tcp"
# What RunPod answers when no host has the requested GPU free (a 400).
CAPACITY_TEXT = "no longer any instances available"


@dataclass(frozen=True)
class CreateOptions:
    """Everything `pod create` sends, already validated and resolved."""

    name: str
    image: str
    gpu_ids: list[str]  # exact catalog ids, most preferred first
    gpu_count: int = 1
    volume_gb: int = 50
    disk_gb: int = 30
    cloud: str = "SECURE"
    datacenters: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=lambda: [SSH_PORT])
    min_cuda: str | None = None
    network_volume: str | None = None  # a volume id: /workspace on it instead of a pod volume
    registry: str | None = None  # a RunPod registry credential id, for a private image
    ssh_keys: list[str] = field(default_factory=list)  # registered on the account before create

    def body(self, gpu_id: str) -> dict[str, Any]:
        """The createPod request body for one GPU choice."""
        gpu: dict[str, Any] = {"id": gpu_id, "count": self.gpu_count}
        if self.min_cuda:
            # A floor, not an exact set: any host whose driver reports this CUDA
            # version or newer can run the image.
            gpu["minCudaVersion"] = self.min_cuda
        body: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "gpu": gpu,
            "cloud": self.cloud,
            "disk": self.disk_gb,
            "mounts": mounts(self.network_volume, contract.WORKSPACE) if self.network_volume
            else {"persistent": {"size": self.volume_gb, "path": contract.WORKSPACE}},
            "ports": self.ports if SSH_PORT in self.ports else [SSH_PORT, *self.ports],
            "env": dict(self.env),
            "startSsh": True,
        }
        if self.datacenters:
            body["dataCenterIds"] = list(self.datacenters)
        if self.registry:
            body["registry"] = self.registry
        return body


# -- reading -----------------------------------------------------------------


def list_pods(client) -> list[dict]:
    return listed(client.get("/pods"), "pods", "GET /pods")


def get_pod(client, pod_id: str) -> dict:
    return client.get(f"/pods/{pod_id}")


def find_by_name(client, name: str) -> dict | None:
    for pod in list_pods(client):
        if pod.get("name") == name:
            return pod
    return None


def find_created(client, name: str, window: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> dict | None:
    """The pod named ``name`` a create whose answer was lost may have made, looked for
    over ``window`` seconds (the client's ``listing_lag``) with backoff: RunPod lists a
    new pod only seconds after making it, so one look right away misses it. The name
    was checked free before the create, so a pod that has it now is that create's
    (a second create racing under the same name could fool this; names carry a
    random suffix by default)."""
    window = client.listing_lag if window is None else window
    deadline = clock() + window
    pause = 0.25
    while True:
        found = find_by_name(client, name)
        if found is not None or clock() >= deadline:
            return found
        client.sleep(min(pause, max(0.0, deadline - clock())))
        pause = min(pause * 2, 4.0)


def find_pod(client, ref: str) -> dict:
    """The pod whose id or name is ``ref`` (ids win; a shared name must be told apart)."""
    found = by_id_or_name(list_pods(client), ref, "pods")
    if found is None:
        raise UserError(f'no pod with id or name "{ref}"; `imagebuild pod list` shows your pods')
    return found


def by_id_or_name(items: list[dict], ref: str, kind: str) -> dict | None:
    """The item whose id is ``ref``, else the one named ``ref``; None when none is.
    ``kind`` names them in the error when several share the name."""
    for item in items:
        if item["id"] == ref:
            return item
    named = [item for item in items if item.get("name") == ref]
    if len(named) > 1:
        ids = ", ".join(item["id"] for item in named)
        raise UserError(f'{len(named)} {kind} are named "{ref}" ({ids}); give the id instead')
    return named[0] if named else None


def label(pod: dict) -> str:
    return f"{pod.get('name')} ({pod['id']})"


# -- create ------------------------------------------------------------------


def ensure_name_free(client, name: str) -> None:
    existing = find_by_name(client, name)
    if existing is not None:
        raise UserError(
            f'a pod named "{name}" already exists ({existing["id"]}, {existing["status"]}); '
            "pick another --name or terminate it"
        )


def create_pod(
    client, options: CreateOptions, on_event: Callable[[str], None] = lambda _: None,
    *, check_name: bool = True,
) -> dict:
    """Create one pod, trying ``options.gpu_ids`` in order, by createPod's error table.

    400 (capacity, or a rule the request breaks) and 403 (a pool this account
    cannot use) move on to the next candidate; 402 (balance) and 422 (the
    contract) stop at once: no candidate can succeed. 429 and 5xx are the
    client's retries. The name is checked to be free first: after a lost
    response the pod is then found by that name instead of being created twice.
    """
    if check_name:
        ensure_name_free(client, options.name)
    refused: list[tuple[str, RunPodError]] = []
    for gpu_id in options.gpu_ids:
        if refused:
            on_event(f"{refused[-1][0]}: {_reason(refused[-1][1])}; trying {gpu_id}")
        try:
            return client.request(
                "POST",
                "/pods",
                json=options.body(gpu_id),
                recover=lambda: find_created(client, options.name),
            )
        except RunPodError as error:
            if error.status == 402:
                raise UserError(
                    f"RunPod refused the pod: insufficient balance ({error.detail or 'HTTP 402'}) - "
                    "add credit to the account; no GPU choice can succeed until then"
                ) from None
            if error.status == 422:
                raise UserError(
                    f"RunPod rejected the create request as malformed ({error.detail}"
                    f"{_errors(error)}) - a bug in imagebuild or an unsupported flag value; not retried"
                ) from None
            if error.status not in (400, 403):
                raise
            refused.append((gpu_id, error))
    raise _refused_everywhere(options, refused)


def _reason(error: RunPodError) -> str:
    if error.status == 403:
        return f"this account cannot use its pool ({error.detail or 'HTTP 403'})"
    if _is_capacity(error):
        return "no capacity"
    return f"refused ({error.detail})"


def _errors(error: RunPodError) -> str:
    errors = error.problem.get("errors")
    return ": " + "; ".join(str(e) for e in errors[:5]) if isinstance(errors, list) and errors else ""


def _refused_everywhere(
    options: CreateOptions, refused: list[tuple[str, RunPodError]]
) -> UserError:
    each = "; ".join(f"{gpu}: {_reason(error)}" for gpu, error in refused)
    if all(_is_capacity(error) or error.status == 403 for _, error in refused):
        where = f" in {', '.join(options.datacenters)}" if options.datacenters else ""
        last = next((e for _, e in reversed(refused) if _is_capacity(e)), refused[-1][1])
        return UserError(
            f"no pod created on {options.cloud.lower()} cloud{where} ({each}); RunPod says "
            f'"{last.detail}" - {_capacity_advice(options)}'
        )
    # A rule the request breaks fails identically everywhere: the last detail is the problem.
    return UserError(f"RunPod refused the pod for every GPU tried ({each}); fix the request")


def _capacity_advice(options: CreateOptions) -> str:
    """Only what this request can change: a network volume fixes the data center, and
    network volumes are Secure Cloud only, so neither is advice for a pod on one."""
    if options.network_volume:
        where = options.datacenters[0] if options.datacenters else "its data center"
        return (f"the network volume ties the pod to {where}: add fallbacks {where} has "
                "(`imagebuild gpus` lists GPUs), or retry later")
    other = "community" if options.cloud == "SECURE" else "secure"
    place = "another --datacenter" if options.datacenters else "a --datacenter"
    return f"add fallbacks (--gpu 4090,a6000,l40s), try --cloud {other}, {place}, or retry later"


def _is_capacity(error: RunPodError) -> bool:
    return error.status == 400 and CAPACITY_TEXT in error.detail.lower()


# -- waiting -----------------------------------------------------------------


class NotReady(UserError):
    """The pod did not get ready: ``pod`` as last seen, ``seen`` what was last seen, and
    ``reason`` the error lines of its log (read while it still exists; None: not read yet)."""

    def __init__(self, message: str, pod: dict, seen: str, reason: str | None = None):
        super().__init__(message, exit_code=1)
        self.pod = pod
        self.seen = seen
        self.reason = reason


def log_reason(client, pod_id: str, tail: int = 30) -> str:
    """The pod's last log lines that name an error (else its last line), for a pod
    that failed; '' when its log cannot be read."""
    from imagebuild.runpod import logs

    try:
        lines = [line for line in logs.read(client, pod_id, tail=tail, idle=1.0) if line.strip()]
    except Exception:  # noqa: BLE001 - the reason is a courtesy; the failure is reported anyway
        return ""
    errors = [line for line in lines if "error" in line.lower() or "denied" in line.lower()]
    return " | ".join((errors or lines)[-2:])


def failed_message(pod: dict, reason: str) -> str:
    """An existing pod in ERROR: what RunPod does with it and the command that ends it.
    Never terminated here: the pod and its volume are the user's."""
    why = f" (its log: {reason})" if reason else ""
    cost = f"${pod.get('cost') or 0:.2f}/h"
    volume = network_volume_id(pod)
    if volume:
        end = (f"`imagebuild pod terminate {pod['id']}` ends it (network volume {volume}, its "
               "/workspace, is kept)")
    else:
        end = (f"`imagebuild pod terminate {pod['id']} --force` ends it and deletes its volume; "
               f"`imagebuild pod update {pod['id']} --image REF` then `imagebuild pod start "
               f"{pod['id']}` tries another image on the same volume")
    return (f"pod {label(pod)} is ERROR instead of starting{why}; RunPod bills it ({cost}) "
            f"until it is terminated and cannot stop it: {end}")


# How long RunPod's gateway may keep refusing a pod that has no other SSH before
# create gives up on it (the pod's sshd starts a few seconds after RUNNING).
GATEWAY_GRACE = float(os.environ.get("IMAGEBUILD_GATEWAY_GRACE") or 60)
# How long a RUNNING pod may go without publishing its 22/tcp before the gateway is tried.
DIRECT_GRACE = 30.0


def wait_until_ready(
    client,
    pod: dict,
    *,
    timeout: float = 900.0,
    on_event: Callable[[str], None] = lambda _: None,
    probe: Callable[[str, int], tuple[bool, str]] = ssh_mod.probe,
    gateway: Callable[[dict], tuple[bool, str]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Poll until the pod is RUNNING *and* SSH answers: its own sshd, or, on a pod
    without a public IP or published 22/tcp, RunPod's gateway (``gateway``: runs a
    no-op there; default ``gateway_login``).

    RUNNING alone only means the container started. On timeout the error says
    what was seen last; stopping the pod is the caller's decision. A pod the
    gateway keeps refusing, with no other way in, is given up on after
    ``GATEWAY_GRACE`` seconds, not the whole ``timeout``.
    """
    gateway = gateway or gateway_login
    deadline = clock() + timeout
    interval = 0.5
    last = ""
    running_since = refused_since = None
    while True:
        pod = get_pod(client, pod["id"])
        status = pod["status"]
        if status == "ERROR":  # a failed image pull, usually: it bills, and waiting won't help
            reason = log_reason(client, pod["id"])
            raise NotReady(failed_message(pod, reason), pod, status, reason)
        if status in ("EXITED", "TERMINATED"):
            raise NotReady(
                f"pod {label(pod)} is {status} instead of starting; it was left as is - "
                f"`imagebuild pod status {pod['id']}` for details", pod, status
            )
        seen = status
        if status == "RUNNING":
            running_since = clock() if running_since is None else running_since
            definite = gateway_only(pod)
            if definite or (ssh_mod.endpoint(pod, "direct") is None
                            and clock() - running_since >= DIRECT_GRACE):
                ready, seen = gateway(pod)
                seen = f"RUNNING, {no_direct_ssh(pod)}: RunPod's gateway {seen}"
                if ready:
                    on_event(seen)
                    return pod
                refused_since = clock() if refused_since is None else refused_since
                # Only where no direct SSH can come: a port published late still may.
                if definite and clock() - refused_since >= GATEWAY_GRACE:
                    raise NotReady(f"pod {label(pod)} has {no_direct_ssh(pod)} and RunPod's SSH gateway "
                                   f"did not let this machine in for {GATEWAY_GRACE:g} s ({seen}) - "
                                   "check the key (--public-key), or pick a pod with a public IP "
                                   "(--cloud secure)", pod, seen)
            else:
                ready, seen = _ssh_ready(pod, probe)
                if ready:
                    on_event(seen)  # the sshd phase is said even when SSH answers at once
                    return pod
        if seen != last:
            on_event(seen)
            last = seen
        if clock() >= deadline:
            raise NotReady(
                f"pod {label(pod)} not ready after {timeout:g} s; last seen: {last} - "
                f"`imagebuild pod logs {pod['id']}` shows what it did", pod, last
            )
        sleep(min(interval, max(0.0, deadline - clock())))
        interval = min(interval * 1.5, 5.0)


def gateway_only(pod: dict) -> bool:
    """Whether the gateway is the only SSH a RUNNING pod will have: no 22/tcp asked
    for, or 22 mapped with no public IP/port (a community host without one)."""
    if SSH_PORT not in pod.get("ports", []):
        return True
    ports = (pod.get("runtime") or {}).get("ports") or []
    return any(p.get("private") == 22 and not (p.get("public") and p.get("ip")) for p in ports) \
        and ssh_mod.endpoint(pod, "direct") is None


def no_direct_ssh(pod: dict) -> str:
    if SSH_PORT not in pod.get("ports", []):
        return "no 22/tcp port"
    return "no public IP for SSH" if gateway_only(pod) else f"22/tcp not published after {DIRECT_GRACE:g} s"


def gateway_login(pod: dict) -> tuple[bool, str]:
    """Whether a no-op runs on the pod through RunPod's gateway, and what was seen."""
    import shutil

    from imagebuild.pods import remote
    from imagebuild.runpod.hostkeys import ssh_options

    target = ssh_mod.endpoint(pod, "proxy")
    if target is None:
        return False, "has no login for it yet"
    binary = shutil.which("ssh")
    if binary is None:
        return False, "cannot be used: ssh not found on PATH (install the OpenSSH client)"
    out = remote.run(target, "true", timeout=remote.CONNECT_TIMEOUT + 15, ssh=binary,
                     options=ssh_options(pod, target))
    return (True, f"answers ({target})") if out.ok else (False, out.error or "failed")


def _ssh_ready(pod: dict, probe) -> tuple[bool, str]:
    direct = ssh_mod.endpoint(pod, "direct")
    if direct is None:
        return False, "RUNNING, SSH port not published yet"
    ok, seen = probe(direct.host, direct.port)
    return ok, f"RUNNING, SSH at {direct.host}:{direct.port} {seen}"


# -- actions -----------------------------------------------------------------

# What a status looks like once an action has taken effect (for recovery after
# a lost response, and to tell "already done" from "not allowed").
_DONE = {"stop": {"EXITED"}, "start": {"PROVISIONING", "STARTING", "RUNNING"}}
_PAST = {"stop": "stopped", "start": "started"}


def stop_pod(client, pod: dict) -> dict:
    return _act(client, pod, "stop")


def start_pod(client, pod: dict) -> dict:
    try:
        return _act(client, pod, "start")
    except RunPodError as error:
        if error.status != 400:
            raise
        # The stopped pod's GPU was taken on its host; the pod cannot move hosts.
        volume = network_volume_id(pod)
        if volume:
            # /workspace is on the network volume, not the host: a new pod in its data
            # center picks it up, so replacing the pod loses nothing.
            name = _volume_name(client, volume)
            raise UserError(
                f'RunPod cannot start pod {label(pod)}: "{error.detail}" - its host has no free GPU now. '
                f"Its /workspace is on network volume {name}, so replace it: `imagebuild pod terminate "
                f"{pod['id']}` then `imagebuild pod create --volume {name}` (any host in its data center), "
                f"or retry `imagebuild pod start {pod['id']}` later"
            ) from None
        raise UserError(
            f'RunPod cannot start pod {label(pod)}: "{error.detail}" - its host has no free GPU now. '
            f"Retry `imagebuild pod start {pod['id']}` later, or create a new pod "
            "(this pod's volume stays on its host: copy what you need off it first)"
        ) from None


def _volume_name(client, volume_id: str) -> str:
    from imagebuild.runpod.volume_api import list_volumes

    try:
        return next((v["name"] for v in list_volumes(client) if v["id"] == volume_id), volume_id)
    except RunPodError:
        return volume_id


def _act(client, pod: dict, action: str) -> dict:
    if action not in pod.get("actions", []):
        raise _not_allowed(pod, action)
    path = f"/pods/{pod['id']}/action"

    def recover() -> dict | None:
        fresh = get_pod(client, pod["id"])
        return fresh if fresh["status"] in _DONE[action] else None

    try:
        return client.request("POST", path, json={"action": action}, recover=recover)
    except RunPodError as error:
        if error.status != 409:
            raise
        raise _not_allowed(get_pod(client, pod["id"]), action) from None


def _not_allowed(pod: dict, action: str) -> UserError:
    status = pod["status"]
    allowed = ", ".join(pod.get("actions", [])) or "nothing"
    already = f" (already {_PAST[action]})" if status in _DONE.get(action, ()) else ""
    return UserError(
        f"cannot {action} pod {label(pod)}: it is {status}{already}; RunPod allows {allowed} now"
    )


def terminate_pod(client, pod: dict) -> None:
    """Delete the pod for good. The save-before-terminate logic wraps this call.

    A 404 means it is gone already (e.g. our first DELETE succeeded and its
    answer was lost), which is what was asked for.
    """
    try:
        client.request("DELETE", f"/pods/{pod['id']}")
    except RunPodError as error:
        if error.status != 404:
            raise
