"""RunPod's SSH gateway (``ssh.runpod.io``) for tests: a real sshd on 127.0.0.1.

What it copies from the real one (docs.runpod.io/pods/configuration/use-ssh, "Basic
SSH": every pod has it, no SCP/SFTP; the public-IP method is the "full SSH"):
- one login name per pod (``PODID-HASH``, the pod's ``ssh.proxy.username``);
- its OWN host key, the same for every pod: it is RunPod's, not the pod's, so a
  client that pins both under one name sees a changed key (issue 22, "Why" 8);
- an interactive shell only: without a PTY it answers with an error, and a command
  given as ssh arguments is ignored (``ForceCommand``), so commands go on stdin;
- no port forwarding, no agent forwarding.

The login names do not exist on this machine: ``libnss-wrapper`` (Debian package,
scripts/setup.sh) gives sshd a passwd file holding them. sshd runs as root (as
the real gateway's front does); each pod's shell is what its backend says
(``docker exec -it`` into its container, or a host shell for banner-only pods).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NSS_WRAPPER = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"
# What the real gateway prints when the client asked for no PTY.
NO_PTY = "Error: Your SSH client doesn't support PTY"


def available() -> str | None:
    """None when a gateway can run here, else why not."""
    if os.geteuid() != 0:
        return "the fake gateway's sshd must run as root"
    if not shutil.which("sshd") and not Path("/usr/sbin/sshd").exists():
        return "sshd not installed (openssh-server)"
    if not Path(NSS_WRAPPER).exists():
        return "libnss-wrapper not installed (scripts/setup.sh)"
    return None


class Gateway:
    """``with Gateway() as gw``; ``gw.open(user, shell, keys)`` per running pod."""

    def __init__(self) -> None:
        why = available()
        if why:
            raise RuntimeError(why)
        self.root = Path(tempfile.mkdtemp(prefix="fake-gateway-"))
        self.host = "127.0.0.1"
        self.port = _free_port()
        for sub in ("keys", "pods"):
            (self.root / sub).mkdir()
        self.host_key = self.root / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
                       check=True)
        self._users: set[str] = set()
        self._write_passwd()
        shell = self.root / "gateway-shell"
        shell.write_text(
            "#!/bin/sh\n"
            "# RunPod's gateway: an interactive shell on the pod, never $SSH_ORIGINAL_COMMAND.\n"
            f'[ -t 0 ] || {{ echo "{NO_PTY}"; exit 1; }}\n'
            f'pod="{self.root}/pods/$USER"\n'
            '[ -f "$pod" ] || { echo "Error: pod not found or not running"; exit 1; }\n'
            '. "$pod"\n')
        shell.chmod(0o755)
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress {self.host}\nHostKey {self.host_key}\n"
            f"PidFile {self.root / 'sshd.pid'}\nAuthorizedKeysFile {self.root}/keys/%u\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "AllowTcpForwarding no\nAllowAgentForwarding no\nX11Forwarding no\n"
            "PermitUserEnvironment no\nPrintMotd no\nPrintLastLog no\n"
            f"ForceCommand {shell}\nLogLevel ERROR\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        env = {**os.environ, "LD_PRELOAD": NSS_WRAPPER,
               "NSS_WRAPPER_PASSWD": str(self.root / "passwd"),
               "NSS_WRAPPER_GROUP": str(self.root / "group")}
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        self._log = open(self.root / "sshd.log", "wb")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], env=env,
                                      stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_listening()

    @property
    def host_public_key(self) -> str:
        return (self.root / "ssh_host_ed25519_key.pub").read_text().strip()

    def open(self, user: str, shell: list[str], keys: list[str]) -> None:
        """Let ``keys`` log in as ``user`` and land in ``shell`` (the pod's)."""
        self._users.add(user)
        self._write_passwd()
        (self.root / "keys" / user).write_text("".join(f"{key.strip()}\n" for key in keys if key.strip()))
        (self.root / "pods" / user).write_text(f"exec {shlex.join(shell)}\n")

    def shut(self, user: str) -> None:
        """The pod stopped: the gateway has nothing to connect that login to."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / "pods" / user).unlink()

    def close(self) -> None:
        self._proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        if self._proc.poll() is None:
            self._proc.kill()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write_passwd(self) -> None:
        # The machine's own entries (sshd looks itself up, and root) plus one per pod login.
        passwd = Path("/etc/passwd").read_text()
        passwd += "".join(f"{user}:x:0:0:RunPod gateway login:/root:/bin/sh\n" for user in sorted(self._users))
        (self.root / "passwd").write_text(passwd)
        (self.root / "group").write_text(Path("/etc/group").read_text())

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self._log.flush()
                    raise RuntimeError("the fake gateway's sshd did not start: "
                                       + (self.root / "sshd.log").read_text()[-500:]) from None
                time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
