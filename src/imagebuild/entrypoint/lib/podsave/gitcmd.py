"""git in one working tree: as its owner, never prompting, always with a timeout, and
its failures in one line of words."""

from __future__ import annotations

import os
import re

from .config import Config
from .proc import Result, owner_of, process_env, redact, run

# (what git may print, what it means for the user); first match wins. Auth comes
# before network: ssh says "Could not read from remote repository" after both.
_GIT_REASONS = [
    (["non-fast-forward", "fetch first", r"\[rejected\]"],
     "rejected, non-fast-forward: the remote has commits this lacks (pull, then push)"),
    (["hook declined"], "rejected by a hook on the remote"),
    (["Host key verification failed"],
     "auth: the remote's SSH host key is unknown (ssh to it once to accept it)"),
    ([r"Permission denied \(", "Authentication failed", "could not read Username",
      "terminal prompts disabled", "Invalid username or password", "HTTP 40[13]",
      "returned error: 40[13]", "denied to"],
     "auth: credentials missing or refused"),
    (["Could not resolve", "Name or service not known", "Connection refused",
      "Temporary failure in name resolution", "Connection timed out",
      "Network is unreachable", "No route to host", "Failed to connect",
      "Connection reset", "Operation timed out", "Could not connect"],
     "network: cannot reach the remote"),
    (["Permission denied", "insufficient permission", "Read-only file system",
      "unable to create temporary object", "unpacker error", "unpack failed"],
     "rejected: the remote is not writable"),
    (["does not appear to be a git repository", "Repository not found", "not found"],
     "the remote repository was not found"),
]


# Commands that talk to a remote; any other git command only reads and writes here.
TRANSPORT = ("push", "ls-remote", "fetch", "lfs")
# Commands that never reach a remote: they run without looking up the ssh command.
LOCAL_ONLY = frozenset({
    "config", "rev-parse", "ls-files", "ls-tree", "for-each-ref", "worktree", "cat-file",
    "diff-tree", "check-attr", "hash-object", "update-index", "write-tree", "symbolic-ref",
    "stash", "commit-tree", "show", "rev-list", "remote", "read-tree", "mktree"})
_LOCAL_WRITE = re.compile(r"insufficient permission|Permission denied|Read-only file system"
                          r"|unable to create|unable to write|cannot lock|Operation not permitted",
                          re.IGNORECASE)
_HOOK = re.compile(r"(?:^|/)hooks/([\w.-]+)")


def timeout_reason(res: Result) -> str:
    """A timeout, and what was still running: a hook of this repository, one of the
    remote's (a file:// remote runs them here), the transport, or a local step."""
    for cmd in res.running:
        hook = _HOOK.search(cmd)
        if hook and hook.group(1) in ("pre-push", "reference-transaction", "post-checkout"):
            return (f"{res.reason} in this repository's own {hook.group(1)} hook (a local "
                    f"step, not the network: fix the hook, or skip it with core.hooksPath)")
        if hook:
            return f"{res.reason} in the remote's {hook.group(1)} hook"
    if any(re.search(r"\b(ssh|git-remote-\w+|git-upload-pack|git-receive-pack|"
                     r"git-lfs|receive-pack|upload-pack)\b", c) for c in res.running):
        return f"{res.reason} talking to the remote (network?)"
    if not res.running:
        return f"{res.reason} (network?)"
    return f"{res.reason} in a local step ({redact(res.running[0])[:80]})"


def rejection_reason(summary: str, err: str) -> str | None:
    """The remote's own words for a ref it refused ("[remote rejected] main -> main
    (shallow update not allowed)"), with what its hook printed; None when the
    summary is not a remote's refusal."""
    m = re.search(r"\[remote rejected\]\s*(?:\S+\s*->\s*\S+\s*)?\((.*)\)", summary)
    if not m:
        return None
    said = [ln.strip().removeprefix("remote:").strip() for ln in err.splitlines()
            if ln.strip().startswith("remote:")]
    said = [ln for ln in said if ln and not ln.startswith(("error: hook declined",
                                                            "To ", "Resolving"))]
    cause = m.group(1)
    text = f"rejected by the remote: {cause}" + (f"; it said: {' / '.join(said[:3])}"
                                                 if said else "")
    if "hook declined" in cause:
        text = text.replace("rejected by the remote", "rejected by a hook on the remote", 1)
    return redact(text)[:300]


def git_reason(res: Result, text: str | None = None, *, remote: bool = True) -> str:
    """One line saying why a git command failed, without secrets. remote: the
    command talked to a remote (else a failure is this repository's own)."""
    if res.reason:
        return timeout_reason(res) if res.timed_out else res.reason
    text = text if text is not None else res.err + "\n" + res.out
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if found := rejection_reason(line, res.err):
            return found
    if not remote:
        for line in lines:
            if _LOCAL_WRITE.search(line):
                return (f"this repository cannot be written here by pod-save's user (a local "
                        f"problem, not the remote: check the owner and mode of its .git) "
                        f"({redact(line)[:200]})")
    for patterns, meaning in _GIT_REASONS:
        for line in lines:
            if re.search("|".join(patterns), line, re.IGNORECASE):
                return f"{meaning} ({redact(line)[:200]})"
    # git's own verdict ("fatal: ...") beats advice lines that come after it.
    detail = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))),
                  lines[-1] if lines else f"exit code {res.rc}")
    return redact(detail)[:240]


def common_dir(path: str) -> str | None:
    """A work tree's common git dir, read from disk (no git process): .git, or where a
    `gitdir:` file (linked worktree, submodule, --separate-git-dir) and its commondir
    lead."""
    dot = os.path.join(path, ".git")
    if os.path.isdir(dot):
        return dot
    try:
        with open(dot, encoding="utf-8", errors="replace") as f:
            gitdir = os.path.join(path, f.readline().removeprefix("gitdir:").strip())
    except OSError:
        return None
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as f:
            return os.path.normpath(os.path.join(gitdir, f.read().strip()))
    except FileNotFoundError:
        return gitdir if os.path.isdir(gitdir) else None
    except OSError:
        return None


class GitError(Exception):
    pass


class Git:
    """git in one working tree: as its owner, never prompting, always with a timeout."""

    # -c safe.directory=*: as root (no owner to switch to) git refuses others' repos.
    # Low-speed limits abort a stalled HTTP transfer instead of waiting for the timeout.
    FLAGS: tuple[str, ...] = ("-c", "safe.directory=*", "-c", "http.lowSpeedLimit=1000",
             "-c", "http.lowSpeedTime=30", "-c", "core.quotePath=false",
             "--no-optional-locks")

    def __init__(self, path: str, cfg: Config):
        self.path = path
        self.cfg = cfg
        self.owner = owner_of(path)
        self.env = process_env(self.owner, {
            "GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never",
            "SSH_ASKPASS_REQUIRE": "never", "LC_ALL": "C", "LANGUAGE": "",
        })
        self._config: dict[str, str] | None = None
        self._ssh_set = False

    def config_items(self) -> dict[str, str]:
        """The config (keys lowercased but for a subsection's own case, the last value
        of each), from one `git config --list` per work tree: a process per key was a
        tenth of a save's git processes."""
        if self._config is None:
            res = self.run("config", "-z", "--list")
            self._config = {}
            for entry in res.out.split("\0") if res.rc == 0 else []:
                name, _, value = entry.partition("\n")
                if name:
                    self._config[name] = value  # the last one wins, as in --get
        return self._config

    def config(self, key: str) -> str:
        """A config value ("" when unset); key as section.name (case-insensitive)."""
        want = key.lower()
        return next((v for k, v in reversed(self.config_items().items())
                     if k.lower() == want), "")

    def _with_ssh(self) -> None:
        """Keep the user's ssh command (it may pick a key), made non-interactive: set
        before the first command that may reach a remote."""
        self._ssh_set = True
        ssh = os.environ.get("GIT_SSH_COMMAND") or self.config("core.sshCommand")
        self.env["GIT_SSH_COMMAND"] = (ssh.strip() or "ssh") + (
            " -o BatchMode=yes -o ConnectTimeout=15"
            " -o ServerAliveInterval=15 -o ServerAliveCountMax=3")

    def run(self, *args: str, env: dict[str, str] | None = None,
            stdin: bytes | None = None) -> Result:
        if not self._ssh_set and args[0] not in LOCAL_ONLY:
            self._with_ssh()
        return run(["git", *self.FLAGS, *args], cwd=self.path,
                   timeout=self.cfg.time_left(self.cfg.git_timeout),
                   env={**self.env, **(env or {})}, owner=self.owner, stdin=stdin)

    def out(self, *args: str, env: dict[str, str] | None = None,
            stdin: bytes | None = None) -> str:
        res = self.run(*args, env=env, stdin=stdin)
        if res.rc != 0:
            raise GitError(f"git {args[0]}: {git_reason(res, remote=args[0] in TRANSPORT)}")
        return res.out

    def try_out(self, *args: str) -> str:
        """Output, or "" when git says no (unset config, missing ref)."""
        res = self.run(*args)
        return res.out.strip() if res.rc == 0 else ""

    def has_commit(self, sha: str) -> bool:
        return self.run("cat-file", "-e", f"{sha}^{{commit}}").rc == 0

    def count(self, tip: str, *exclude: str) -> int | None:
        text = self.try_out("rev-list", "--count", tip, "--not", *exclude)
        return int(text) if text.isdigit() else None


