"""The host's CA bundle goes to builds by itself (issue 26): the rule in image/hostca.py,
and the one line build says about it. Real files; the CLI case stops at a base image
that is not there, so nothing is built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from imagebuild.image import hostca

SPEC = Path(__file__).parent / "specs" / "ci.toml"
NO_BASE = "imagebuild-test/no-such:base"


def _pem(*bodies: str) -> str:
    return "".join(f"-----BEGIN CERTIFICATE-----\n{b}\n-----END CERTIFICATE-----\n" for b in bodies)


def test_a_configured_bundle_wins_in_order_and_a_missing_one_is_skipped(tmp_path):
    mine = tmp_path / "corp.pem"
    mine.write_text(_pem("QUJD"))
    environ = {"SSL_CERT_FILE": str(tmp_path / "gone.pem"), "PIP_CERT": str(mine),
               "CURL_CA_BUNDLE": "/etc/hostname"}
    assert hostca.host_bundle(environ, system=tmp_path / "none") == (mine, "from PIP_CERT")
    assert hostca.choose(None, environ)[0] == mine and "PIP_CERT" in hostca.choose(None, environ)[1]


def test_the_system_bundle_goes_only_when_it_adds_a_ca_certifi_lacks(tmp_path):
    reference, system = tmp_path / "certifi.pem", tmp_path / "system.pem"
    reference.write_text(_pem("QUFB", "QkJC"))
    system.write_text(_pem("QkJC", "QUFB"))  # same set, other order: nothing added
    assert hostca.host_bundle({}, system=system, reference=reference) is None
    system.write_text(_pem("QUFB", "QkJC", "UFJPWFk="))  # a proxy's CA added on this machine
    path, why = hostca.host_bundle({}, system=system, reference=reference)
    assert path == system and "1 CA(s)" in why


def test_given_or_none_is_never_replaced(tmp_path):
    environ = {"SSL_CERT_FILE": "/etc/hostname"}
    assert hostca.choose(Path("none"), environ) == (None, None)
    assert hostca.choose(tmp_path / "x.pem", environ) == (tmp_path / "x.pem", None)


def _build(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (*hostca.ENV_VARS, "IMAGEBUILD_CA_CERT")}
    return subprocess.run([sys.executable, "-m", "imagebuild", *args], cwd=tmp_path, env={**clean, **env},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)


def test_build_says_in_one_line_which_host_bundle_it_passes(tmp_path):
    bundle = tmp_path / "corp.pem"
    bundle.write_text(_pem("QUJD"))
    build = ("build", "--spec", str(SPEC), "--base", NO_BASE)
    said = _build(tmp_path, *build, env={"REQUESTS_CA_BUNDLE": str(bundle)})
    note, error = said.stderr.strip().splitlines()
    assert said.returncode == 1 and "Traceback" not in said.stderr
    assert note == (f"imagebuild: passing the host's CA bundle {bundle} (from REQUESTS_CA_BUNDLE) to the "
                    "build as a secret, never into a layer; --ca-cert FILE for another, --ca-cert none for none")
    assert error.startswith("imagebuild: error: cannot pull the base image")
    for quiet in (("--quiet", *build), (*build, "--ca-cert", "none")):
        done = _build(tmp_path, *quiet, env={"REQUESTS_CA_BUNDLE": str(bundle)})
        assert len(done.stderr.strip().splitlines()) == 1 and "CA bundle" not in done.stderr, done.stderr
