"""A RunPod pod behind the :class:`imagebuild.pods.protocol.Target` interface, so
`pod save/stop/terminate` share their lifecycle rules with local pods."""

from __future__ import annotations

from typing import Any

from imagebuild.pods import ssh
from imagebuild.pods.protocol import Report
from imagebuild.runpod import pods, view, volumes
from imagebuild.runpod.client import Client
from imagebuild.runpod.hostkeys import host_key_alias, ssh_options

_RUNPOD_STATES = {"RUNNING": "running", "EXITED": "stopped", "PROVISIONING": "starting",
                  "STARTING": "starting"}


class RunPodTarget:
    def __init__(self, client: Any, pod: dict):
        self.client = client
        self.pod = pod

    @classmethod
    def find(cls, ref: str) -> RunPodTarget:
        """The RunPod pod an id or name names (the API key from the environment)."""
        client = Client.from_env()
        try:
            return cls(client, pods.find_pod(client, ref))
        except BaseException:
            client.close()
            raise

    @property
    def label(self) -> str:
        return pods.label(self.pod)

    @property
    def ref(self) -> str:
        return self.pod["id"]

    @property
    def status(self) -> str:
        return self.pod["status"]

    @property
    def state(self) -> str:
        return _RUNPOD_STATES.get(self.status, "other")

    def endpoint(self) -> ssh.Endpoint | None:
        return ssh.endpoint(self.pod)

    def ssh_options(self) -> list[str]:
        target = self.endpoint()
        return ssh_options(self.pod, target) if target else []

    def run(self, script: str, timeout: float):
        from imagebuild.pods.remote import run_over_ssh

        return run_over_ssh(self, script, timeout=timeout)

    def workspace_kept(self) -> str | None:
        return volumes.network_volume_id(self.pod)

    def refresh(self) -> None:
        self.pod = pods.get_pod(self.client, self.pod["id"])

    def start(self, wait: bool, timeout: float, on_event: Report) -> None:
        self.pod = pods.start_pod(self.client, self.pod)
        if wait:
            self.pod = pods.wait_until_ready(self.client, self.pod, timeout=timeout, on_event=on_event)

    def stop(self) -> None:
        self.pod = pods.stop_pod(self.client, self.pod)

    def terminate(self) -> None:
        pods.terminate_pod(self.client, self.pod)
        ssh.forget_host_key(host_key_alias(self.pod["id"]))

    def to_json(self) -> dict[str, Any]:
        return view.pod_json(self.pod)

    def status_lines(self) -> list[str]:
        return view.status_lines(self.pod)

    def close(self) -> None:
        self.client.close()
