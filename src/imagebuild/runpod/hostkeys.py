"""The known_hosts names of a RunPod pod's SSH endpoints: by pod id for the pod's own
sshd (RunPod recycles IP:port pairs between pods), one name per gateway for RunPod's
gateway. Apart from ``target`` so that ``pods`` (readiness through the gateway)
needs no import of the target that imports it."""

from __future__ import annotations

from imagebuild.pods import ssh


def host_key_alias(pod_id: str) -> str:
    return f"runpod-{pod_id}"


def gateway_host_key_alias(gateway: ssh.Endpoint) -> str:
    """RunPod's gateway shows RunPod's host key, the same for every pod: it gets its
    own known_hosts entry, never the pod's (``accept-new`` would refuse one of them)."""
    return f"runpod-gateway.{gateway.host}" + (f".{gateway.port}" if gateway.port != 22 else "")


def ssh_options(pod: dict, target: ssh.Endpoint) -> list[str]:
    """ssh options for ``target``, one of ``pod``'s endpoints: the known_hosts name
    of its host key (by pod id: RunPod recycles IP:port pairs between pods)."""
    alias = gateway_host_key_alias(target) if target.kind == "proxy" else host_key_alias(pod["id"])
    return ["-o", f"HostKeyAlias={alias}"]
