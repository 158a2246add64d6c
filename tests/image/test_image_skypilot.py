"""What SkyPilot expects of an image it launches (`image_id: docker:...`), from its
source (skypilot 0.14.1), checked on the pod over SSH:

- RunPod (sky/provision/runpod/utils.py `launch`): the image's entrypoint gets a bash
  command that runs `apt update; apt install openssh-server rsync curl patch`,
  `ssh-keygen -A` in /etc/ssh, appends SkyPilot's key to root's authorized_keys,
  edits /etc/pam.d/sshd, `service ssh restart`, writes /etc/profile.d, then sleeps.
  SkyPilot logs in as root (its default `docker_username_for_runpod`) on port 22.
- Other clouds (sky/provision/docker_utils.py): `docker run --entrypoint=/bin/bash`
  on a VM, then `apt-get install rsync curl wget patch openssh-server python3-pip
  fuse` under `flock`, sshd on port 10022 via `service ssh start`, logins as the
  image's default user; SkyPilot's runtime (uv, its own venv) needs curl and python3.

The image has what RunPod's path installs, so that install is a no-op; wget,
python3-pip and fuse the other clouds' path installs itself.
tests/test_export_skypilot.py runs SkyPilot's actual RunPod command on the image.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker

COMMANDS = ("bash", "base64", "apt-get", "apt", "dpkg", "service", "ssh-keygen", "sshd", "rsync", "curl",
            "patch", "sudo", "flock", "python3", "tee", "sed")
RUNPOD_PACKAGES = ("openssh-server", "rsync", "curl", "patch")


def test_skypilots_tools_are_on_path(pod):
    out = pod.sh("for c in " + " ".join(COMMANDS) + '; do command -v "$c" >/dev/null || echo "missing $c"; done')
    assert out.strip() == ""


def test_skypilots_runpod_packages_are_installed(pod):
    """SkyPilot's `apt install` on every RunPod launch finds them already there."""
    out = pod.sh("dpkg-query -W -f '${Package} ${Status}\\n' " + " ".join(RUNPOD_PACKAGES))
    status = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert status == {p: "install ok installed" for p in RUNPOD_PACKAGES}


def test_ssh_service_script_and_pam_config(pod):
    """`service ssh restart|start` and the pam_loginuid edit need these files."""
    pod.sh("test -x /etc/init.d/ssh && grep -q pam_loginuid.so /etc/pam.d/sshd && test -d /etc/profile.d")


def test_default_user_is_root(image_config):
    """SkyPilot logs in as root on RunPod, and as the image's default user elsewhere:
    root's authorized_keys is where both put their key."""
    assert image_config.get("User") in ("", "root", "0", None)


def test_python3_is_new_enough_for_skypilots_runtime(pod):
    out = pod.sh("python3 -c 'import sys; print(sys.version_info >= (3, 8))'")
    assert out.strip() == "True"
