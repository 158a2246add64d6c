"""One error type for everything the user can fix: the CLI prints it as one line."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can act on. ``str(err)`` is the whole message, one line.

    ``exit_code`` follows the CLI convention: 2 for bad input (spec, flags),
    1 for a failed operation (build, push, API call).
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class SpecError(UserError):
    """The spec (imagebuild.toml) or a flag is invalid."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=2)
