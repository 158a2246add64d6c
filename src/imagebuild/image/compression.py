"""Layer compression of a pushed image: gzip (what the engine pushes), and a zstd variant
of the same content that new hosts unpack faster.

Which engines pull zstd layers: Docker Engine 23.0 or newer and containerd 1.5 or newer;
Docker Engine 20.10 does not (the pull downloads, then fails with "archive/tar: invalid tar
header"). A pod on RunPod runs on whatever engine its host has, so the gzip image always
stays pushed, and a zstd pod that goes to ERROR is created again from it.

dockerd 20.10 cannot push zstd and there is no buildx here, so the variant is made by
skopeo, straight from the engine's copy of the image (``docker-daemon:``): its layers come
uncompressed and are compressed once, to zstd. (Copied registry to registry, skopeo 1.9
keeps the gzip blobs it finds already in the destination.) The result is checked: every
layer of the pushed manifest must be zstd, else nothing is recorded.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from imagebuild import imageref
from imagebuild.errors import SpecError, UserError
from imagebuild.image.registry_auth import scrub

MODES = ("gzip", "zstd", "both")
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
TAG_SUFFIX = "-zstd"  # the variant's tag: the content hash's tag with this suffix
STATE_KEY = "zstd_image"  # in the push state, beside "image" (the gzip digest)


def check_mode(value: str, where: str = "--compression") -> str:
    if value not in MODES:
        raise SpecError(f"{where} {value!r}: expected one of {', '.join(MODES)}")
    return value


def pushes_zstd(mode: str) -> bool:
    """``zstd`` pushes both too: the gzip image is the fallback for engines without zstd."""
    return mode in ("zstd", "both")


def _plain_http(registry: str) -> bool:
    """Whether the engine talks plain http to it: Docker's own rule for loopback registries
    (127.0.0.0/8 and localhost are insecure-allowed without configuration)."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def authfile(folder: Path, registry: str, auth: dict | None) -> Path | None:
    """Credentials in a 0600 file of the scratch folder (never on a command line, which
    `ps` shows); None: skopeo reads what `docker login` stored."""
    if not auth:
        return None
    token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
    path = folder / "auth.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"auths": {registry: {"auth": token}}}, out)
    return path


def skopeo() -> str:
    found = shutil.which("skopeo")
    if not found:
        raise UserError("--compression zstd/both needs skopeo to make the zstd variant: install it "
                        "(apt-get install skopeo), or push with --compression gzip")
    return found


def manifest(reference: str, authfile: Path | None) -> dict:
    """The registry's manifest of ``reference`` (skopeo inspect --raw)."""
    argv = [skopeo(), "inspect", "--raw", *(["--authfile", str(authfile)] if authfile else [])]
    if _plain_http(imageref.parse(reference).registry):
        argv.append("--tls-verify=false")
    done = subprocess.run([*argv, f"docker://{reference}"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise UserError(f"reading the manifest of {reference} failed: {' '.join(done.stderr.split())[:240]}")
    return json.loads(done.stdout)


def _skopeo_error(stderr: str, auth: dict | None) -> str:
    """skopeo's fatal message, its end kept (the cause comes last), on one line."""
    text = " ".join(stderr.split())
    found = re.search(r'level=fatal msg="(.*)"', text)
    text = scrub(found.group(1) if found else text, auth)
    return text if len(text) <= 240 else "..." + text[-240:]


def push_zstd(local_image: str, repository: str, tag: str, auth: dict | None) -> str:
    """Push a zstd variant of the engine's ``local_image`` as ``repository:tag-zstd``;
    its ``repository@sha256:...`` once every layer in the registry is zstd."""
    tool = skopeo()
    registry = imageref.parse(repository).registry
    target = f"{repository}:{tag}{TAG_SUFFIX}"
    with tempfile.TemporaryDirectory(prefix="imagebuild-zstd-") as scratch:
        credentials = authfile(Path(scratch), registry, auth)
        digestfile = Path(scratch) / "digest"
        argv = [tool, "copy", "--quiet", "--dest-compress-format", "zstd",
                "--digestfile", str(digestfile), *(["--authfile", str(credentials)] if credentials else [])]
        if os.environ.get("DOCKER_HOST"):  # skopeo's docker-daemon: ignores DOCKER_HOST
            argv += ["--src-daemon-host", os.environ["DOCKER_HOST"]]
        if _plain_http(registry):
            argv.append("--dest-tls-verify=false")
        done = subprocess.run([*argv, f"docker-daemon:{local_image}", f"docker://{target}"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            detail = _skopeo_error(done.stderr, auth)
            raise UserError(f"pushing the zstd variant {target} failed (skopeo: {detail}); the gzip "
                            "image is pushed: push again, or use --compression gzip")
        digest = digestfile.read_text().strip()
        layers = manifest(target, credentials).get("layers", [])
    kept = [layer["mediaType"] for layer in layers if layer.get("mediaType") != ZSTD_LAYER]
    if kept or not layers:
        found = ", ".join(sorted(set(kept))) or "none"
        raise UserError(f"the zstd variant {target} has layers that are not zstd ({found}); nothing "
                        "recorded: the pods keep the gzip image")
    return f"{repository}@{digest}"


def publish_variant(project, mode: str, auth: dict | None) -> str | None:
    """After the gzip push of ``project``'s build: push its zstd variant when ``mode`` asks,
    and record it in the push state beside the gzip digest (the fallback)."""
    from imagebuild.image.state import write_json

    if not pushes_zstd(mode):
        return None
    record = project.built()
    image = push_zstd(record.image, record.repository, record.tag, auth)
    write_json(project.push_path, {STATE_KEY: image, "compression": mode})
    return image


def pod_images(project, mode: str, image: str | None) -> tuple[str | None, str | None]:
    """(image a pod starts from, gzip image to fall back to or None). ``mode`` is the pod's
    compression: zstd takes the pushed zstd variant, with the pushed gzip digest behind it."""
    if mode != "zstd":
        return image, None
    if image is not None:
        raise UserError("--compression zstd starts the pod from the pushed zstd variant: leave out "
                        "--image (or pass --compression gzip)", 2)
    state = project.push_state()
    if not state.get(STATE_KEY) or not state.get("image"):
        raise UserError(f"--compression zstd: no zstd variant pushed from {project.spec_file}: run "
                        "`imagebuild push --compression both` first", 2)
    return state[STATE_KEY], state["image"]


def pod_mode(flag: str | None, spec) -> str:
    """The compression a pod starts from: --compression, else zstd only when the spec's
    [build] compression is "zstd" ("both" pushes the variant; pods keep gzip)."""
    if flag is not None:
        if flag not in ("gzip", "zstd"):
            raise UserError(f"--compression {flag!r}: expected gzip or zstd", 2)
        return flag
    return "zstd" if spec.build.compression == "zstd" else "gzip"


def with_fallback(create, options, fallback: str | None, say):
    """``create(options)``; when that pod went to ERROR (a host whose engine cannot pull
    zstd: it was terminated already, nothing bills), ``create`` again from ``fallback``."""
    import dataclasses

    from imagebuild.runpod.launch import PodWentBad

    try:
        return create(options)
    except PodWentBad as error:
        if fallback is None or error.seen != "ERROR":
            raise
        why = error.reason or "no reason logged"
        say(f"imagebuild: pod {options.name} went ERROR on the zstd image ({why}) and was terminated; "
            f"creating it again from the gzip image {fallback}")
        return create(dataclasses.replace(options, image=fallback))
