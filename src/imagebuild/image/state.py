"""The small JSON files imagebuild keeps beside a spec (see ``imagebuild.project``).

Read and written atomically; one that cannot be read is reported, not ignored:
silently treating it as empty would run or overwrite a different image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagebuild.errors import UserError
from imagebuild.fileio import write_atomic


def read_json(path: Path, rewrite: str) -> dict[str, Any]:
    """The object in ``path``, or {} when there is none; ``rewrite`` is the command that
    writes it again (named in the error)."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid JSON"
        raise UserError(f"{path}: {reason}; fix it or delete it and run `{rewrite}` again") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: expected a JSON object; delete it and run `{rewrite}` again")
    return state


def write_json(path: Path, values: dict[str, Any], merge: bool = True) -> Path:
    """Write ``values`` (merged into what is there, unless ``merge`` is False) atomically."""
    state = {**read_json(path, "imagebuild"), **values} if merge else dict(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(state, indent=2, sort_keys=True) + "\n")
