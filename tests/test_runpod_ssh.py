"""SSH endpoints, argv, and the readiness probe against real sockets."""

from __future__ import annotations

from fake_runpod import BannerBackend

from imagebuild.pods.ssh import endpoint, invocation, probe

DIRECT = {"host": "203.0.113.7", "port": 34446, "username": "root", "command": "ssh root@203.0.113.7 -p 34446"}
PROXY = {"host": "ssh.runpod.io", "port": 22, "username": "abc-64411eb2", "command": "ssh abc-64411eb2@ssh.runpod.io"}


def ssh_invocation(pod: dict, command=(), **options):
    # What `pod ssh` does: the pod's endpoint (direct first), then its argv.
    return invocation(endpoint(pod), command, **options)


def test_direct_endpoint_runs_the_command_as_ssh_would():
    inv = ssh_invocation({"ssh": {"direct": DIRECT, "proxy": PROXY}}, ["ls", "-la", "/workspace"], identity="~/.ssh/runpod")
    assert inv.endpoint.kind == "direct" and inv.stdin is None
    assert inv.argv[:3] == ["ssh", "-i", "~/.ssh/runpod"]
    assert inv.argv[-7:] == ["-p", "34446", "--", "root@203.0.113.7", "ls", "-la", "/workspace"]
    assert "-tt" not in inv.argv


def test_gateway_needs_a_pty_and_takes_commands_on_stdin():
    inv = ssh_invocation({"ssh": {"direct": None, "proxy": PROXY}}, ["nvidia-smi"])
    assert inv.endpoint.kind == "proxy"
    assert "-tt" in inv.argv
    assert inv.argv[-1] == "abc-64411eb2@ssh.runpod.io"  # no command argument: the gateway ignores it
    assert inv.stdin == "nvidia-smi\nexit\n"


def test_interactive_gateway_shell_has_no_stdin_script():
    assert ssh_invocation({"ssh": {"direct": None, "proxy": PROXY}}).stdin is None


def test_probe_sees_an_ssh_banner():
    backend = BannerBackend()
    host, port = backend.start("p", "img", {})
    try:
        ok, seen = probe(host, port)
    finally:
        backend.close()
    assert ok and seen.startswith("SSH-2.0-")


def test_probe_reports_refused_and_silent_ports():
    refused = BannerBackend(banner=None)
    silent = BannerBackend(banner=b"")
    try:
        assert probe(*refused.start("p", "img", {})) == (False, "refused the connection")
        ok, seen = probe(*silent.start("p", "img", {}), timeout=0.3)
        assert not ok and "no SSH banner" in seen
    finally:
        refused.close()
        silent.close()


def test_a_local_pod_is_reached_with_the_keys_it_was_started_with(tmp_path):
    from imagebuild.pods.podenv import identities_for

    def key(name: str, private: bool = True) -> str:
        line = f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{name * 8} {name}@host"
        (tmp_path / f"{name}.pub").write_text(line + "\n")
        if private:
            (tmp_path / name).write_text("private\n")
        return line

    started_with = key("aaaa")
    key("bbbb")  # another key of the user's: not on the pod
    only_public = key("cccc", private=False)
    (tmp_path / "broken.pub").write_bytes(b"\xff\xfe")
    assert identities_for(f"{started_with}\n{only_public}\n", tmp_path) == [tmp_path / "aaaa"]
    assert identities_for("", tmp_path) == []


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.1)


class _Pods:
    """getPod answers for wait_until_ready: a RUNNING pod with ``runtime_ports``."""

    def __init__(self, runtime_ports):
        self.pod = {"id": "p1", "name": "n", "status": "RUNNING", "ports": ["22/tcp"],
                    "runtime": {"ports": runtime_ports},
                    "ssh": {"direct": None, "proxy": PROXY}}

    def get(self, path: str) -> dict:
        return self.pod


def _wait(pods: _Pods, gateway, timeout: float = 300):
    from imagebuild.runpod.pods import wait_until_ready

    clock = _Clock()
    try:
        wait_until_ready(pods, pods.pod, timeout=timeout, gateway=gateway, clock=clock, sleep=clock.sleep)
        return "ready", clock.now
    except Exception as error:  # noqa: BLE001 - the outcome is what is checked
        return str(error), clock.now


def test_no_public_ip_is_given_up_on_when_the_gateway_refuses_not_after_the_timeout():
    refused = _Pods([{"private": 22, "public": None, "type": "tcp", "ip": None}])
    outcome, took = _wait(refused, lambda pod: (False, "refused: Permission denied (publickey)"))
    assert "no public IP for SSH" in outcome and "Permission denied" in outcome and took < 120, outcome


def test_a_port_not_published_yet_is_waited_for_even_while_the_gateway_refuses():
    late = _Pods([])  # nothing mapped yet: a direct port may still come
    outcome, took = _wait(late, lambda pod: (False, "refused"), timeout=200)
    assert "not ready after 200 s" in outcome and took >= 200, outcome
    assert _wait(late, lambda pod: (True, "answers"))[0] == "ready"  # the gateway counts
