"""The CLI's one error boundary: every way a command can end becomes at most one
line on stderr and the right exit code - never a traceback.

- ``UserError``: its message, its exit code (2 bad input, 1 failed operation).
- usage errors (unknown flag, bad value): one line naming the flag, exit 2.
- ``OSError`` (a full disk, a path that is a file, no permission): one line naming
  the path and what to do, exit 1.
- a closed pipe on stdout (``| head``): quiet, exit 1, as cat and grep do.
- Ctrl-C / SIGTERM: "interrupted", exit 130 / 143; commands clean up on the way
  out (pods they started are stopped, ``docker build`` children are ended).
- anything else is a bug: one line saying so; ``IMAGEBUILD_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable

from imagebuild.errors import UserError

# What to do about an OSError, by errno; the path and the system's words come first.
_OS_HINTS = {
    errno.ENOSPC: "free some space and run it again",
    errno.EDQUOT: "free some space and run it again",
    errno.EACCES: "check its permissions, or choose another path",
    errno.EPERM: "check its permissions, or choose another path",
    errno.EROFS: "choose a writable path",
    errno.ENOTDIR: "a part of that path is a file, not a folder: choose another path",
    errno.EISDIR: "that path is a folder: give a file",
    errno.ENOENT: "check the path",
}

_EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _Signalled:
    """Which signal ended the command: typer turns KeyboardInterrupt into a bare exit
    code, so the handler remembers the signal to word the last line."""

    signum: int | None = None


def _interrupt(signum, frame) -> None:
    # SIGTERM (a closed terminal, a killed CI job) takes the Ctrl-C path: every
    # pod a command started is stopped again on the way out.
    _Signalled.signum = signum
    raise KeyboardInterrupt


def os_error_line(error: OSError) -> str:
    """One line for an OSError: the path, the system's words, what to do."""
    words = error.strerror or str(error)
    path = error.filename
    where = f"{path}: " if path is not None else ""
    hint = _OS_HINTS.get(error.errno or 0)
    return f"{where}{words}" + (f"; {hint}" if hint else "")


def _say(line: str) -> None:
    stream = sys.stderr or sys.__stderr__
    if stream is None:
        return
    try:
        stream.write(f"imagebuild: {line}\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def _usage_line(error) -> str:
    """A click usage error as one line, pointing to the command's --help."""
    message = error.format_message().strip().replace("\n", " ")
    ctx = getattr(error, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {message}{where}"


def _quiet_stdout() -> None:
    # A reader that went away (``| head``): further writes go nowhere, so the
    # interpreter's final flush does not print a second error.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _open_missing_stdio() -> None:
    # A closed stdin/stdout/stderr (``<&-``, a daemon) is None in Python: make each
    # an empty or discarding stream so no command trips over it.
    if sys.stdin is None:
        sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def run(command: Callable[[], object]) -> int:
    """Run the typer app (``command``) inside the boundary; the process exit code."""
    from typer import Abort as TyperAbort
    from typer import Exit as TyperExit
    from typer._click import exceptions as click_exceptions

    _open_missing_stdio()
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = command()
        code = code if isinstance(code, int) else 0
        if code == 130 and _Signalled.signum is not None:
            raise KeyboardInterrupt
        sys.stdout.flush()
        return code
    except UserError as error:
        message, code = str(error), error.exit_code
        if code == 130 and _Signalled.signum == signal.SIGTERM:
            # A command's own "interrupted; ..." after it cleaned up: SIGTERM's code.
            message, code = message.replace("interrupted", "interrupted (SIGTERM)", 1), 143
        _say(f"error: {message}")
        return code
    except KeyboardInterrupt:
        signum = _Signalled.signum or signal.SIGINT
        _say("interrupted" + (" (SIGTERM)" if signum == signal.SIGTERM else ""))
        return _EXIT_BY_SIGNAL.get(signum, 130)
    except click_exceptions.NoArgsIsHelpError as error:
        error.show()
        return 2
    except click_exceptions.UsageError as error:
        _say(_usage_line(error))
        return 2
    except click_exceptions.ClickException as error:
        _say(f"error: {error.format_message()}")
        return error.exit_code
    except (TyperAbort, EOFError):
        _say("aborted")
        return 1
    except TyperExit as done:
        return done.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except OSError as error:
        if error.errno == errno.EPIPE:
            _quiet_stdout()
            return 1
        if error.filename is None and error.errno in (errno.ENOSPC, errno.EIO):
            # Our own stdout: a full disk behind ``> file`` or /dev/full.
            _quiet_stdout()
            _say(f"error: cannot write the output: {os.strerror(error.errno)}; "
                 f"{_OS_HINTS.get(error.errno, 'check where it goes')}")
            return 1
        _say(f"error: {os_error_line(error)}")
        return 1
    except Exception as error:  # noqa: BLE001 - the last line of defence, a bug
        if os.environ.get("IMAGEBUILD_DEBUG"):
            raise
        _say(f"internal error (a bug in imagebuild): {type(error).__name__}: "
             f"{str(error).splitlines()[0][:200] if str(error) else ''} "
             "- rerun with IMAGEBUILD_DEBUG=1 for the traceback and report it")
        return 1
