"""The small state file next to the spec: what `imagebuild push` last pushed.

`imagebuild pod create` and `imagebuild run` default to that exact digest.
It holds no secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagebuild.errors import SpecError, UserError
from imagebuild.fileio import write_atomic

STATE_FILENAME = ".imagebuild-state.json"
# The lock of the pushed image, beside the state: the recipe to rebuild that digest.
PUSHED_LOCK = ".imagebuild-pushed.lock"


def state_path(directory: Path) -> Path:
    return directory / STATE_FILENAME


def read_state(directory: Path) -> dict[str, Any]:
    """The recorded state, or {} when nothing was pushed from here yet.

    A state file that cannot be read is reported, not ignored: silently
    treating it as empty would run or overwrite a different image.
    """
    path = state_path(directory)
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid JSON"
        raise UserError(f"{path}: {reason}; fix it or delete it and run `imagebuild push` again") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: expected a JSON object; delete it and run `imagebuild push` again")
    return state


def write_state(directory: Path, **values: Any) -> Path:
    """Merge ``values`` into the state file atomically."""
    path = state_path(directory)
    state = read_state(directory)
    state.update(values)
    return write_atomic(path, json.dumps(state, indent=2, sort_keys=True) + "\n")


def pushed_image(directory: Path) -> str | None:
    """The `name@sha256:...` reference last pushed from this spec's folder."""
    return read_state(directory).get("image")


def default_image(loaded: Any, engine: Any = None) -> str:
    """The image a pod runs without --image, for RunPod and local pods alike: the one
    last pushed from the spec's folder. A local pod (``engine`` given) takes it when
    the engine has it or can pull it, else the spec's last local build."""
    pushed = pushed_image(loaded.directory)
    if engine is None:
        if not pushed:
            raise SpecError(f"--image: nothing pushed from {loaded.directory} yet; run `imagebuild push` "
                            "first or pass --image")
        return pushed
    if pushed and _have_or_pull(engine, pushed):
        return pushed
    from imagebuild.image.builder import plan_for
    from imagebuild.image.lock import current_lock

    lock = current_lock(loaded.path, loaded.spec)  # the last build's; none: nothing built yet
    built = plan_for(engine, loaded.spec, lock).image if lock else None
    if built and engine.exists(built):
        return built
    where = loaded.path or "the default spec"
    raise UserError(f"no image of {where} here: build it with `imagebuild build"
                    f"{' --spec ' + str(loaded.path) if loaded.path else ''}` or pass --image REF")


def _have_or_pull(engine: Any, image: str) -> bool:
    import docker.errors

    if engine.exists(image):
        return True
    try:
        engine.client.images.pull(image)
    except docker.errors.DockerException:
        return False
    return True
