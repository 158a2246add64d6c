"""``httpx``, imported without its command-line client.

httpx's package ``__init__`` imports its own CLI (click, rich, pygments)
whenever those are installed. We never use it, and it costs tens of
milliseconds on every `imagebuild pod` command. A None entry in sys.modules
makes that one import fail, which httpx handles; the entry is removed again so
a later explicit ``import httpx._main`` still works.
"""

import sys

_skip_cli = "httpx" not in sys.modules and "httpx._main" not in sys.modules
if _skip_cli:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
try:
    import httpx  # noqa: E402
finally:
    if _skip_cli:
        del sys.modules["httpx._main"]

__all__ = ["httpx"]
