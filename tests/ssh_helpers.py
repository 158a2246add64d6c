"""A key pair and known_hosts in a scratch HOME, for tests that log in over real SSH.

ssh reads the ~/.ssh of the passwd entry, not $HOME, so an ``ssh`` wrapper first
on PATH (``bin``) points it at this one."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SshHome:
    home: Path
    bin: Path
    ssh: Path  # the wrapper
    public_key: str
    key: Path
    known_hosts: Path

    def known(self) -> list[str]:
        """The host names known_hosts holds keys under (one per line)."""
        if not self.known_hosts.exists():
            return []
        return [line.split()[0] for line in self.known_hosts.read_text().splitlines() if line.strip()]


def make_ssh_home(root: Path) -> SshHome:
    ssh_dir = root / "home" / ".ssh"
    ssh_dir.mkdir(parents=True)
    key = ssh_dir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = ssh_dir / "config"
    config.write_text(f"Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {ssh_dir / 'known_hosts'}\n  HashKnownHosts no\n")
    (root / "bin").mkdir()
    wrapper = root / "bin" / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return SshHome(root / "home", root / "bin", wrapper, (ssh_dir / "id_ed25519.pub").read_text(), key,
                   ssh_dir / "known_hosts")
