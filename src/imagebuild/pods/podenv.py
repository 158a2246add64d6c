"""A new pod's environment: ``[pod].env``, ``--env-file``, ``--env K=V``, ``PUBLIC_KEY``.

Values travel byte-for-byte as JSON strings to RunPod: quotes, newlines and
unicode are never re-quoted or trimmed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from imagebuild.errors import SpecError
from imagebuild.image.spec import ENV_NAME

# The pod image reads PUBLIC_KEY into authorized_keys (RunPod's convention).
PUBLIC_KEY = "PUBLIC_KEY"


def parse_env_flags(items: Iterable[str]) -> dict[str, str]:
    """``--env K=V`` flags: split at the first ``=``; the value is kept verbatim."""
    env: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not ENV_NAME.match(name):
            shown = name if ENV_NAME.match(name) else "an invalid name"
            raise SpecError(
                f"--env: expected NAME=VALUE with a name like HF_HOME, got {shown}"
                + ("" if sep else " without '='")
            )
        env[name] = value
    return env


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv file (``K=V``, ``export K=V``, quoted and multi-line values, ``#`` comments)."""
    from dotenv import dotenv_values

    if not path.is_file():
        raise SpecError(f"--env-file: {path} does not exist")
    try:
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"--env-file: cannot read {path} ({type(error).__name__})") from None
    env: dict[str, str] = {}
    for name, value in values.items():
        if not ENV_NAME.match(name):
            raise SpecError(f"--env-file: {path}: expected names like HF_HOME, got an invalid name")
        if value is None:  # a bare `NAME` line: no value given
            raise SpecError(f"--env-file: {path}: {name} has no value; write {name}=VALUE")
        env[name] = value
    return env


def _pub_files(ssh_dir: Path) -> Iterator[tuple[Path, str]]:
    """Each readable ``*.pub`` file in ``ssh_dir`` and its text."""
    for path in sorted(ssh_dir.glob("*.pub")):
        try:
            yield path, path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue


def public_keys(ssh_dir: Path) -> str | None:
    """Every ``~/.ssh/*.pub`` key, one per line (RunPod's PUBLIC_KEY takes several)."""
    keys = []
    for _, text in _pub_files(ssh_dir):
        keys += [
            line for line in text.splitlines() if line.strip().startswith(("ssh-", "ecdsa-", "sk-"))
        ]
    return "\n".join(dict.fromkeys(keys)) or None


def identities_for(authorized: str, ssh_dir: Path) -> list[Path]:
    """The private keys in ``ssh_dir`` whose ``.pub`` is among ``authorized`` (a pod's
    PUBLIC_KEY lines): the keys a pod was started with, so no ``-i`` is needed."""
    wanted = {line.split()[1] for line in authorized.splitlines() if len(line.split()) >= 2}
    found = []
    for pub, text in _pub_files(ssh_dir):
        fields = text.split()
        private = pub.with_suffix("")
        if len(fields) >= 2 and fields[1] in wanted and private.is_file():
            found.append(private)
    return found


def read_public_key(value: str) -> str:
    """``--public-key``: a key itself (``ssh-ed25519 AAAA...``) or a .pub file."""
    if value.strip().startswith(("ssh-", "ecdsa-", "sk-")):
        return value.strip()
    path = Path(value).expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise SpecError(
            f"--public-key: expected a public key or a .pub file, cannot read {path}"
        ) from None
    if not text.startswith(("ssh-", "ecdsa-", "sk-")):
        raise SpecError(
            f"--public-key: {path} is not an SSH public key (expected ssh-ed25519 AAAA...)"
        )
    return text


def merge(*layers: Mapping[str, str]) -> dict[str, str]:
    """Later layers win: spec defaults, then --env-file, then --env."""
    env: dict[str, str] = {}
    for layer in layers:
        env.update(layer)
    return env


def image_env(reference: str, image_id: str | None = None) -> dict[str, str]:
    """The host-set variables naming the image a pod runs (contract.IMAGE_*_ENV)."""
    from imagebuild import contract, imageref

    env = {contract.IMAGE_REF_ENV: reference}
    digest = imageref.parse(reference).digest
    if digest:
        env[contract.IMAGE_DIGEST_ENV] = digest
    if image_id:
        env[contract.IMAGE_ID_ENV] = image_id
    return env
