"""gpu-check.sh's summary of OUT (python3 gpu_check_report.py OUT): one line per check
(the canary's, then the longer probes'), OUT/table.md (for bench/README.md) and
OUT/results.json. Exit status 1 when a check failed. Standard library only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGET_S = 30.0  # the whole canary on a healthy GPU host (issue 24)


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no output"
    return lines[-1].strip() if lines else "no output"


def rows(out: Path) -> list[dict]:
    """Each check: name, verdict, figure, seconds (and limit_s for the canary's)."""
    timed = {}
    for line in (out / "results.tsv").read_text().splitlines():
        name, status, started, ended = line.split("\t")
        timed[name] = (int(status), float(ended) - float(started))
    found: list[dict] = []
    status, wall = timed.pop("pod-canary")
    report = _json(out / "pod-canary.json")
    if not report.get("checks"):
        found.append({"name": "pod-canary", "verdict": "fail", "seconds": round(wall, 2),
                      "figure": f"no report (exit {status}): {_last_line(out / 'pod-canary.log')}"})
    else:
        found += [{key: check[key] for key in ("name", "verdict", "figure", "seconds", "limit_s")}
                  for check in report["checks"]]
        within = report["seconds"] <= TARGET_S
        # The canary as a whole: its checks' verdict; a fail of its own only when it was too slow.
        found.append({"name": "pod-canary", "verdict": report["verdict"] if within else "fail",
                      "seconds": round(wall, 2), "summary": within,
                      "figure": f"{report['verdict']} in {report['seconds']:.1f} s "
                                f"({'within' if within else 'OVER'} the {TARGET_S:.0f} s target; "
                                f"{wall:.1f} s with Python's start)"})
    for name, (status, seconds) in timed.items():
        probe = _json(out / f"{name}.json")
        if "skip" in probe:
            verdict, figure = "skip", probe["skip"]
        elif status == 0 and probe.get("figure"):
            verdict, figure = "pass", probe["figure"]
        else:
            verdict, figure = "fail", f"exit {status}: {_last_line(out / f'{name}.log')}"
        found.append({"name": name, "verdict": verdict, "figure": figure, "seconds": round(seconds, 2)})
    return found


def table(found: list[dict]) -> str:
    lines = ["| check | verdict | seconds | limit | figure |", "|---|---|---|---|---|"]
    for row in found:
        limit = f"{row['limit_s']:.0f}" if "limit_s" in row else ""
        figure = row["figure"].replace("|", "\\|")
        lines.append(f"| {row['name']} | {row['verdict']} | {row['seconds']:.1f} | {limit} | {figure} |")
    return "\n".join(lines) + "\n"


def main(out: Path) -> int:
    found = rows(out)
    for row in found:
        print(f"{row['verdict'].upper():4} {row['name']}: {row['figure']} ({row['seconds']:.1f} s)")
    (out / "table.md").write_text(table(found))
    (out / "results.json").write_text(json.dumps(found, indent=2) + "\n")
    failed = [row["name"] for row in found if row["verdict"] == "fail" and not row.get("summary")]
    print(f"gpu-check: {len(failed)} check(s) failed{': ' + ', '.join(failed) if failed else ''}; "
          f"table in {out / 'table.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
