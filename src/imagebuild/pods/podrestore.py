"""`imagebuild pod restore`: run the image's `pod-restore --latest` on a pod (in a local
pod's container, or over SSH) and read back what it did, clone by clone.

Each clone's run is framed by a marker line carrying its exit status, so one clone's
failure is reported as that clone's and the others still run. As root (a local pod's
docker exec), pod-restore runs as the owner of the clone: the files it writes belong
to the user, never to root."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from imagebuild import contract
from imagebuild.errors import SpecError
from imagebuild.pods import remote

MARK = "@@imagebuild-restore"
TIMEOUT_S = 600.0
# Run as the clone's owner when root; cd into it; one marker line after each.
_SCRIPT = """ws="${POD_WORKSPACE:-/workspace}"
one() {
  case "$1" in /*) dir="$1" ;; *) dir="$ws/$1" ;; esac
  if [ ! -d "$dir" ]; then echo "pod-restore: $1: no such folder on the pod"; rc=2
  elif ! command -v pod-restore >/dev/null; then
    echo "pod-restore is not on the pod: its image predates it"; rc=127
  else
    owner=$(stat -c %U "$dir" 2>/dev/null)
    if [ "$(id -u)" = 0 ] && [ -n "$owner" ] && [ "$owner" != root ] && [ "$owner" != UNKNOWN ]; then
      (cd "$dir" && runuser -u "$owner" -- env POD_WORKSPACE="$ws" pod-restore --latest 2>&1); rc=$?
    else
      (cd "$dir" && pod-restore --latest 2>&1); rc=$?
    fi
  fi
  echo "%MARK% $rc $1"
}
# --all: every clone pod-restore --latest --all would restore (pod-save's walk), each
# run on its own, as its own owner.
clones() {
  for lib in "$(dirname "$(readlink -f "$(command -v pod-restore)")")/../lib" \
             %LIB%; do
    [ -d "$lib/podsave" ] && break
  done
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from podsave import latest
print("\\n".join(latest.clones(sys.argv[2])))' "$lib" "$ws"
}
every() {
  list=$(clones 2>&1) || { echo "$list"; echo "%MARK% 1 (the list of clones)"; return; }
  printf '%s\\n' "$list" | while IFS= read -r c; do [ -n "$c" ] && one "$c"; done
}
"""


@dataclass
class Restored:
    """pod-restore's result for one clone (or for --all: every clone)."""

    repo: str  # as given; with --all, the clone's path
    exit_code: int | None
    output: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def verdict(self) -> str:
        if self.ok:
            return "restored"
        return "cut off (no exit status)" if self.exit_code is None else f"failed (exit {self.exit_code})"

    def to_json(self) -> dict:
        return {"repo": self.repo, "ok": self.ok, "exit_code": self.exit_code, "output": self.output}


def check_repos(repos: list[str], every: bool) -> None:
    """--all or REPO paths, one of them; a path the shell line could not carry is refused."""
    if every == bool(repos):
        raise SpecError("pod restore: give --all (every clone on the pod) or REPO paths, not both or neither")
    for repo in repos:
        if not repo.strip() or any(c in repo for c in "\0\n\r"):
            raise SpecError(f"pod restore: REPO {repo!r}: expected a clone's path, relative to /workspace "
                            "or absolute (e.g. code/proj)")


def script(repos: list[str], every: bool) -> str:
    calls = ["every"] if every else [f"one {shlex.quote(r)}" for r in repos]
    body = _SCRIPT.replace("%MARK%", MARK).replace("%LIB%", f"{contract.ENTRYPOINT_DIR}/lib")
    return body + "\n".join(calls) + f"\necho {MARK}-end\n"


def parse(text: str, repos: list[str], every: bool) -> list[Restored]:
    """The framed output, clone by clone (each marker names its clone); a REPO with no
    marker was cut off (None)."""
    wanted = [] if every else list(repos)
    found, lines = [], []
    for line in text.replace("\r", "").splitlines():
        if line.startswith(MARK + " "):
            code, _, name = line[len(MARK) + 1:].partition(" ")
            found.append(Restored(name, int(code) if code.lstrip("-").isdigit() else None, lines))
            lines = []
        elif line.strip():
            lines.append(line)
    for name in wanted[len(found):]:
        found.append(Restored(name, None, lines))
        lines = []
    if every and f"{MARK}-end" not in text:  # cut off: the clones after these are unknown
        found.append(Restored("(the clones after these)", None, lines))
    return found


def restore(target, repos: list[str], every: bool) -> tuple[list[Restored], str | None]:
    """(each clone's result, why nothing could be run); never raises for what the pod does."""
    check_repos(repos, every)
    if target.state != "running":
        return [], f"pod {target.label} is not running ({target.status}): start it first"
    out = target.run(script(repos, every), timeout=TIMEOUT_S + remote.CONNECT_TIMEOUT)
    if out.text is None:
        return [], out.error or "no answer from the pod"
    return parse(out.text, repos, every), None
