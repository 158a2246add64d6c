"""Pods as text: the `pod list` table rows and the `pod status` lines."""

from __future__ import annotations

from imagebuild import contract
from imagebuild.pods import ssh

MASK = "***"


def masked(pod: dict) -> dict:
    """The pod object with its env values hidden: RunPod returns them verbatim, and
    they hold tokens (HF, W&B, GitHub). The names stay: they say what is set."""
    if not isinstance(pod.get("env"), dict):
        return pod
    return {**pod, "env": {name: MASK for name in pod["env"]}}


def pod_json(pod: dict) -> dict:
    """A RunPod pod in the shape local pods share (:mod:`imagebuild.pods.podjson`);
    RunPod's own object, env values masked, under ``raw``."""
    from imagebuild.pods import podjson
    from imagebuild.runpod.volume_api import network_volume_id

    info = pod.get("gpu") if isinstance(pod.get("gpu"), dict) else None
    volume = network_volume_id(pod)
    return podjson.shape(
        kind="runpod", id=pod["id"], name=pod.get("name", ""), ref=pod["id"],
        status=podjson.runpod_status(pod.get("status", "")), image=pod.get("image"),
        gpu={"type": info.get("id"), "count": info.get("count", 1)} if info else None,
        cost_per_hr=float(pod.get("cost") or 0.0),
        ssh=podjson.endpoint_json(ssh.endpoint(pod)), volume=volume, volume_kept=volume is not None,
        raw=masked(pod))


def uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def gpu(pod: dict) -> str:
    info = pod.get("gpu")
    if not info:
        return "-"
    name = info["id"].replace("NVIDIA GeForce ", "").replace("NVIDIA ", "")
    count = info.get("count", 1)
    return f"{count} x {name}" if count != 1 else name


def ssh_address(pod: dict) -> str:
    target = ssh.endpoint(pod)
    return _address(target) if target else "-"


def _address(target: ssh.Endpoint) -> str:
    if target.kind == "direct":
        return f"{target.username}@{target.host} -p {target.port}"
    return f"{target.username}@{target.host} (gateway)"


def row(pod: dict, idle_s: int | None = None) -> tuple[str, ...]:
    """A `pod list` row (ID, NAME, STATUS, GPU, $/H, UPTIME, SSH); ``idle_s``: seconds
    at 0 % GPU, marked past an hour."""
    from imagebuild.runpod.spend import IDLE_WARN_S

    runtime = pod.get("runtime") or {}
    marked = idle_s is not None and idle_s >= IDLE_WARN_S
    return (
        pod["id"],
        pod.get("name", ""),
        f"{pod['status']} (0% GPU {uptime(idle_s)})" if marked else pod["status"],
        gpu(pod),
        f"{pod.get('cost', 0.0):.2f}",
        uptime(runtime.get("uptime")),
        ssh_address(pod),
    )


def _so_far(pod: dict) -> str:
    from imagebuild.runpod.spend import cost_so_far

    spent = cost_so_far(pod)
    return "" if spent is None else f", ${spent:.2f} so far (since the container started)"


def idle_stop_line(pod: dict) -> str:
    """Whether and how the pod stops itself when idle (from the variables it was given)."""
    from imagebuild.pods.idlestop import describe

    env = pod.get("env") if isinstance(pod.get("env"), dict) else {}
    what = describe(env)
    if what is None:
        return "no idle stop (pod create --idle-stop 45m)"
    if env.get("RUNPOD_API_KEY"):
        return f"stops {what}, through RunPod's API with the pod's RUNPOD_API_KEY"
    return (f"stops {what}, through RunPod's API if RunPod gives the pod a RUNPOD_API_KEY; "
            f"without a key it ends the container (see {contract.LOG_DIR}/idle.log)")


def status_lines(pod: dict) -> list[str]:
    """`pod status`: what a person checks before deciding what to do with a pod."""
    runtime = pod.get("runtime") or {}
    where = pod.get("dataCenterId") or "no host yet"
    lines = [
        f"pod      {pod.get('name')} ({pod['id']})",
        f"status   {pod['status']}  (allowed now: {', '.join(pod.get('actions', [])) or 'nothing'})",
        f"gpu      {gpu(pod)}  on {pod.get('cloud', '?').lower()} cloud, {where}",
        f"cost     ${pod.get('cost', 0.0):.2f}/h{_so_far(pod)}",
        f"uptime   {uptime(runtime.get('uptime'))}",
        f"idle     {idle_stop_line(pod)}",
        f"image    {pod.get('image')}",
        f"cuda     {pod.get('cudaVersion') or '-'} (host driver)",
    ]
    targets = [t for t in (ssh.endpoint(pod, "direct"), ssh.endpoint(pod, "proxy")) if t]
    lines += [f"ssh      {_address(t)}" for t in targets] or ["ssh      - (no endpoint yet)"]
    lines += [f"http     {url}" for url in proxy_urls(pod)]
    lines.append(f"volume   {_volume(pod)}")
    return lines


def _volume(pod: dict) -> str:
    mounts = pod.get("mounts") or {}
    if mounts.get("network"):
        return f"network volume {mounts['network'][0]['volumeId']} at /workspace (kept on terminate)"
    if mounts.get("persistent"):
        return f"{mounts['persistent']['size']} GB on the pod's host (deleted on terminate)"
    return "none"


def proxy_urls(pod: dict) -> list[str]:
    """RunPod's HTTPS proxy address of each ``PORT/http`` port (Jupyter on 8888)."""
    ports = [p.split("/")[0] for p in pod.get("ports", []) if p.endswith("/http")]
    return [f"https://{pod['id']}-{port}.proxy.runpod.net" for port in ports]
