"""pod-canary's command line: parse, run, print."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from podcanary import checks, runner, start


def main(argv: list[str] | None = None, doc: str = "") -> int:
    parser = argparse.ArgumentParser(prog="pod-canary", description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--check", action="append", choices=[name for name, _, _ in checks.CHECKS],
                        help="run only this check (repeatable)")
    parser.add_argument("--report", metavar="PATH",
                        help="write the report to PATH, not to the pod's report file (POD_CANARY_RESULT)")
    parser.add_argument("--at-start", action="store_true",
                        help="the entrypoint's run: status line, report file, login line, provenance")
    args = parser.parse_args(argv)
    if args.at_start:
        report = start.at_start()
    else:
        report = runner.run_checks(set(args.check) if args.check else None)
        if args.report:  # a run outside the pod (scripts/gpu-check.sh): its own file
            start.write_atomic(args.report, json.dumps(report, indent=2) + "\n")
        elif not args.check:
            with contextlib.suppress(OSError):  # not root: printed; the entrypoint's file stays
                start.write_report(report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(runner.lines(report)))
    sys.stdout.flush()
    return 1 if report["verdict"] == "fail" else 0
