"""Install Node.js and npm from the npm registry (used at image build time).

The npm registry carries the official Node.js binaries as the ``node-linux-<arch>``
packages, so one registry (or a mirror of it) serves Node.js, npm and Claude Code,
and a TLS-intercepting proxy needs only the CA bundle passed as a build secret.
Each tarball is checked against the registry's sha512 integrity before use.

usage: python3 install-node.py NODE_VERSION NPM_VERSION [NODE_INTEGRITY NPM_INTEGRITY]
           (e.g. 22 10, or 22.21.1 10.9.2 sha512-... sha512-... from imagebuild.lock)
       python3 install-node.py --verify PACKAGE VERSION INTEGRITY
           (the registry still serves PACKAGE@VERSION with the lock's integrity)
"""

import base64
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import tarfile
import urllib.request

REGISTRY = os.environ.get("npm_config_registry",  # noqa: SIM112 - npm's own name
                          "https://registry.npmjs.org").rstrip("/")
PREFIX = "/usr/local"
ARCH = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]


def fetch(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def _key(version):
    return tuple(int(part) for part in version.split("-")[0].split("."))


def resolve(package, wanted):
    """Highest release of ``package`` whose version starts with ``wanted``."""
    meta = json.loads(fetch(f"{REGISTRY}/{package}", "application/vnd.npm.install-v1+json"))
    matching = [
        v for v in meta["versions"]
        if "-" not in v and (v == wanted or v.startswith(wanted + "."))
    ]
    if not matching:
        sys.exit(f"install-node: no {package} release matches {wanted!r}")
    version = max(matching, key=_key)
    return version, meta["versions"][version]["dist"]


def download(package, wanted, locked=None):
    version, dist = resolve(package, wanted)
    if locked:
        check_locked(package, version, dist, locked)
    data = fetch(dist["tarball"])
    algorithm, _, expected = dist["integrity"].partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        sys.exit(f"install-node: {package}@{version} failed its {algorithm} integrity check")
    return version, tarfile.open(fileobj=io.BytesIO(data))


def extract(archive, destination, keep=("package/",)):
    """Unpack the members under ``keep`` without their ``package/`` prefix."""
    safe = {"filter": "tar"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
    for member in archive.getmembers():
        if member.name.startswith(keep) and member.name != "package/":
            member.name = member.name[len("package/"):]
            archive.extract(member, destination, **safe)


def check_locked(package, version, dist, locked):
    if dist["integrity"] != locked:
        sys.exit(f"install-node: {package}@{version} has integrity {dist['integrity']} in the "
                 f"registry, not {locked} as in imagebuild.lock; run `imagebuild lock --upgrade node`")


def main():
    if sys.argv[1] == "--verify":
        package, version, locked = sys.argv[2:5]
        check_locked(package, version, resolve(package, version)[1], locked)
        return
    node_wanted, npm_wanted = sys.argv[1], sys.argv[2]
    node_locked, npm_locked = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
    node_version, node_tar = download(f"node-linux-{ARCH}", node_wanted, node_locked)
    extract(node_tar, PREFIX, keep=("package/bin/node",))  # headers and docs: not needed

    npm_version, npm_tar = download("npm", npm_wanted, npm_locked)
    npm_home = f"{PREFIX}/lib/node_modules/npm"
    shutil.rmtree(npm_home, ignore_errors=True)
    extract(npm_tar, npm_home)
    for tool in ("npm", "npx"):
        link = f"{PREFIX}/bin/{tool}"
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(f"../lib/node_modules/npm/bin/{tool}-cli.js", link)
    print(f"node={node_version}\nnpm={npm_version}")


if __name__ == "__main__":
    main()
