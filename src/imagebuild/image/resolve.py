"""Resolve a spec into a lock: apt inside the base, Python with uv, Node from npm.

apt is asked inside the base image itself (``docker run BASE apt-get install -s``)
since the base's distribution, not the host's, decides the versions. Python goes
through uv's resolver for the pod's platform (x86_64 Linux) and interpreter, with
hashes. Node.js, npm and Claude Code are read from the npm registry with their
sha512 integrity.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from imagebuild import imageref
from imagebuild.engine import Engine, base_unavailable
from imagebuild.errors import UserError
from imagebuild.image.lock import FORMAT, PYTHON_PLATFORM, SECTIONS, Lock, spec_inputs
from imagebuild.image.pkgname import canonical
from imagebuild.image.spec import Spec

NPM_REGISTRY = os.environ.get("npm_config_registry",  # noqa: SIM112 - npm's own name
                              "https://registry.npmjs.org").rstrip("/")
_INST = re.compile(r"^Inst (\S+?)(?::\w+)? (?:\[[^\]]*\] )?\((\S+) ")
_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==(\S+)")
_APT_SCRIPT = """set -e
rm -f /etc/apt/apt.conf.d/docker-clean
TLS=""; [ -s /run/secrets/ca_bundle ] && TLS="-o Acquire::https::CAInfo=/run/secrets/ca_bundle"
apt-get $TLS update -qq >&2
out=$(apt-get install -s -qq --no-install-recommends "$@")
printf '%s\n' "$out" | grep '^Inst ' || true
echo "Have python3 $(dpkg-query -W -f='${Version}' python3 2>/dev/null || true)"
"""


def resolve_lock(spec: Spec, engine: Engine, previous: Lock | None = None,
                 upgrade: Iterable[str] | None = None, ca_cert: Path | None = None,
                 on_section: Callable[[str], None] = lambda section: None) -> Lock:
    """A lock for ``spec``. Sections of ``previous`` whose inputs did not change and
    that ``upgrade`` does not name are kept as they are; ``upgrade=[]`` means all.
    ``on_section`` is told each section before it is resolved (seconds each)."""
    wanted = spec_inputs(spec)
    names = None if upgrade is None else {n.lower() for n in upgrade}
    old = previous.data if previous else {}
    # SOURCE_DATE_EPOCH of builds from this lock: midnight (UTC) of the day it was made.
    epoch = old.get("epoch", int(time.time()) // 86400 * 86400)
    data: dict[str, Any] = {"format": FORMAT, "epoch": epoch,
                            "inputs": wanted}
    unknown = sorted((names or set()) - _lockable_names(old))
    if unknown and old:
        raise UserError(f"lock --upgrade {unknown[0]}: not a section ({', '.join(SECTIONS)}) nor a "
                        "package of the lock; check the name", 2)
    resolver = _Resolver(spec, engine, ca_cert, names or set())
    for section in SECTIONS:
        source = _DEPENDS.get(section)
        keep = (old.get("inputs", {}).get(section) == wanted[section] and section in old
                and not _names_section(names, section, old)
                and (source is None or data[source] == old.get(source)))
        # A later section reads what an earlier one resolved (sim constrains by python).
        if not keep:
            on_section(section)
        data[section] = old[section] if keep else getattr(resolver, section)(data, old)
    return Lock(data)


# A section resolved again when the one it builds on changed: apt inside the base,
# the interpreter from the system's python3, the sim layer on the python layer's pins.
_DEPENDS = {"system": "base", "python": "system", "sim": "python"}


def _lockable_names(old: dict) -> set[str]:
    return {name for section in SECTIONS if section in old
            for name in (section, *_members(old[section], section))}


def _members(content: dict, section: str) -> set[str]:
    members = {*content.get("apt", {}), *content.get("packages", {}), *content}
    if section == "node":
        members |= {pin.get("name", "") for pin in content.values() if isinstance(pin, dict)}
    return {m.lower() for m in members}


def _names_section(names: set[str] | None, section: str, old: dict) -> bool:
    if names is None:
        return False
    if not names or section in names:
        return True
    return bool(names & _members(old.get(section, {}), section))


class _Resolver:
    def __init__(self, spec: Spec, engine: Engine, ca_cert: Path | None, upgrade: set[str]):
        self.spec, self.engine, self.ca_cert, self.upgrade = spec, engine, ca_cert, upgrade

    def base(self, data: dict, old: dict) -> dict:
        reference = self.spec.image.base
        image = self.engine.image(reference)
        if image is None and not self.engine.pull(_with_tag(reference)):
            raise base_unavailable(reference)
        image = image or self.engine.image(reference)
        digests = [d for d in (image.attrs.get("RepoDigests") or [])
                   if imageref.parse(d).repository in reference]
        return {"image": reference, "id": image.id, **({"digest": digests[0]} if digests else {})}

    def system(self, data: dict, old: dict) -> dict:
        packages = data["inputs"]["system"]["packages"]
        output = self._in_base(data["base"]["image"], packages)
        apt = {m.group(1): m.group(2) for m in map(_INST.match, output.splitlines()) if m}
        have = re.search(r"^Have python3 (\S+)", output, re.M)
        python3 = apt.get("python3") or (have.group(1) if have else "")
        return {"python3": python3, "apt": dict(sorted(apt.items()))}

    def _in_base(self, image: str, packages: list[str]) -> str:
        command = ["docker", "run", "--rm", "--network", "host", "--entrypoint", "bash"]
        if self.ca_cert:
            command += ["-v", f"{self.ca_cert.resolve()}:/run/secrets/ca_bundle:ro"]
        command += [image, "-c", _APT_SCRIPT, "apt", *packages]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if line.startswith("E: ")]
            last = (errors or done.stderr.strip().splitlines() or ["(no output)"])[0]
            raise UserError(f"system.packages: apt inside {image} cannot install them: {last}; "
                            "check the names in [system] packages", 2)
        return done.stdout

    def python(self, data: dict, old: dict) -> dict:
        interpreter = self._interpreter(data)
        uv_pin = self._compile([f"uv=={self.spec.python.uv}"], interpreter, None, {})
        wanted = ["pip", *self.spec.python.packages]  # pip: the venv's seed, pinned too
        packages = self._compile(wanted, interpreter, None, old.get("python", {}).get("packages", {}))
        return {"interpreter": interpreter, "platform": PYTHON_PLATFORM, "uv": uv_pin["uv"],
                "packages": packages}

    def sim(self, data: dict, old: dict) -> dict:
        base = data["python"]["packages"]
        backend = data["inputs"]["sim"]["torch_backend"] or None
        wanted = [*self.spec.python.packages, *self.spec.simulators.packages]
        if not self.spec.simulators.packages:
            return {"packages": {}}
        every = self._compile(wanted, data["python"]["interpreter"], backend,
                              {**base, **old.get("sim", {}).get("packages", {})}, constraints=base)
        # The sim layer installs only what the python layer has not (same versions there).
        return {"packages": {name: pin for name, pin in every.items() if name not in base}}

    def _interpreter(self, data: dict) -> str:
        if self.spec.python.source == "system":
            match = re.match(r"(?:\d+:)?(\d+\.\d+\.\d+)", data["system"]["python3"])
            if not match:
                raise UserError("cannot tell the base's python3 version; add python3 to [system] "
                                "packages or use python.source = \"uv\"", 2)
            return match.group(1)
        listed = _run_uv(["tool", "run", "--from", f"uv=={self.spec.python.uv}", "uv", "python",
                          "list", self.spec.python.version, "--only-downloads"], self.ca_cert)
        found = re.findall(r"cpython-(\d+\.\d+\.\d+)-linux-x86_64-gnu", listed)
        if not found:
            raise UserError(f"uv {self.spec.python.uv} offers no CPython {self.spec.python.version} "
                            "for linux x86_64; check python.version", 2)
        return max(found, key=lambda v: tuple(map(int, v.split("."))))

    def _compile(self, requirements: list[str], interpreter: str, backend: str | None,
                 preferred: dict[str, dict], constraints: dict[str, dict] | None = None) -> dict:
        from imagebuild.image.lock import requirements_text

        with tempfile.TemporaryDirectory(prefix="imagebuild-lock-") as scratch:
            folder = Path(scratch)
            (folder / "in.txt").write_text("".join(f"{r}\n" for r in requirements))
            # uv keeps the versions of an existing output file unless told to upgrade them.
            (folder / "out.txt").write_text(requirements_text(preferred))
            args = ["pip", "compile", str(folder / "in.txt"), "-o", str(folder / "out.txt"),
                    "--generate-hashes", "--no-header", "--no-annotate", "--quiet",
                    "--python-version", interpreter, "--python-platform", PYTHON_PLATFORM]
            if constraints:
                (folder / "c.txt").write_text("".join(f"{n}=={p['version']}\n"
                                                      for n, p in sorted(constraints.items())))
                args += ["-c", str(folder / "c.txt")]
            if backend:
                args += ["--torch-backend", backend]
            for name in sorted(self.upgrade & {p.lower() for p in preferred}):
                args += ["--upgrade-package", name]
            _run_uv(args, self.ca_cert)
            return parse_requirements((folder / "out.txt").read_text())

    def node(self, data: dict, old: dict) -> dict:
        import httpx

        from imagebuild.image.npm import npm_pins

        try:
            return npm_pins(self.spec.node, NPM_REGISTRY, self.ca_cert)
        except httpx.HTTPError as error:
            raise UserError(f"cannot read the npm registry {NPM_REGISTRY}: {error}") from None


def parse_requirements(text: str) -> dict[str, dict[str, Any]]:
    """uv's ``--generate-hashes`` output → {name: {version, hashes}}."""
    packages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip().rstrip("\\").strip()
        match = _REQ.match(line)
        if match:
            name = canonical(match.group(1))
            current = packages[name] = {"version": match.group(2), "hashes": []}
        elif line.startswith("--hash=") and current is not None:
            current["hashes"].append(line.removeprefix("--hash="))
    return dict(sorted(packages.items()))


def _run_uv(args: list[str], ca_cert: Path | None) -> str:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    env = {**os.environ, "UV_NATIVE_TLS": "1"}
    if ca_cert:
        env["SSL_CERT_FILE"] = str(ca_cert)
    done = subprocess.run([uv, *args], capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()] or ["(no output)"]
        detail = next((line.strip() for line in lines if "No solution" in line or "not found" in line
                       or "error" in line.lower()), lines[-1].strip())
        raise UserError(f"uv could not resolve the Python packages: {detail}")
    return done.stdout


def _with_tag(reference: str) -> str:
    return imageref.parse(reference).with_tag()
