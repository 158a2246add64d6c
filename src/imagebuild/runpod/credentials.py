"""Where the RunPod API key comes from: ``RUNPOD_API_KEY``, else ``~/.runpod/config.toml``.

The config file is the one RunPod's own tools write. runpodctl (viper) stores a
top-level ``apikey = "..."``; the Python SDK (``runpod config``) stores profile
tables, ``[default]`` with ``api_key = "..."``. Both are read; ``RUNPOD_PROFILE``
picks an SDK profile other than ``default``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from imagebuild.errors import UserError

CONFIG_HINT = "~/.runpod/config.toml"


class ApiKey:
    """The key, kept out of ``repr``/``str`` so it cannot slip into a message or log."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The raw key, for the Authorization header only."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key masked."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__

    def __reduce__(self):  # never pickle the key into a cache or a crash dump
        raise TypeError("ApiKey cannot be pickled")


def config_path() -> Path:
    return Path.home() / ".runpod" / "config.toml"


def load_api_key(environ: Mapping[str, str] | None = None, path: Path | None = None) -> ApiKey:
    """The API key, or a one-line UserError (exit 2) saying how to provide one."""
    environ = os.environ if environ is None else environ
    value = environ.get("RUNPOD_API_KEY", "").strip()
    if value:
        return ApiKey(value)
    path = path or config_path()
    value = _key_from_config(path, environ.get("RUNPOD_PROFILE") or "default")
    if value:
        return ApiKey(value)
    raise UserError(
        "no RunPod API key: set RUNPOD_API_KEY or run `runpodctl config --apiKey KEY` "
        f"(it writes {CONFIG_HINT})",
        exit_code=2,
    )


def _key_from_config(path: Path, profile: str) -> str | None:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(
            f"{path}: cannot read it ({type(error).__name__}); fix it or set RUNPOD_API_KEY", 2
        ) from None
    except tomllib.TOMLDecodeError as error:
        # tomllib's messages name a position, never the file's content.
        raise UserError(
            f"{path}: not valid TOML ({error}); fix it or set RUNPOD_API_KEY", 2
        ) from None
    for key in ("apikey", "apiKey", "api_key"):  # runpodctl writes `apikey`
        if isinstance(data.get(key), str) and data[key].strip():
            return data[key].strip()
    table = data.get(profile)
    if (
        isinstance(table, dict)
        and isinstance(table.get("api_key"), str)
        and table["api_key"].strip()
    ):
        return table["api_key"].strip()
    return None
