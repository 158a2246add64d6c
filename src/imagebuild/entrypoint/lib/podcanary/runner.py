"""Runs the checks side by side, each within its limit and all within the canary's
budget, and turns their results into the report (lines and JSON)."""

from __future__ import annotations

import concurrent.futures
import datetime
import time
from dataclasses import asdict, dataclass

from podcanary import checks, facts

BUDGET_S = 30.0  # the whole canary, on a healthy GPU host
DRIVER_LIMIT_S = 10.0


@dataclass
class Result:
    name: str
    verdict: str  # pass, fail, skip
    figure: str
    seconds: float
    limit_s: float


def _timed(name: str, function, ctx: checks.Context, limit: float) -> Result:
    started = time.monotonic()
    try:
        verdict, figure = function(ctx, limit)
    except facts.ProbeError as error:
        verdict, figure = "fail", str(error)
    except Exception as error:  # noqa: BLE001 (a check's own bug is its failure, not the canary's)
        verdict, figure = "fail", f"{type(error).__name__}: {error}"
    return Result(name, verdict, figure, round(time.monotonic() - started, 2), limit)


def run_checks(only: set[str] | None = None) -> dict:
    """Every check (or those in ``only``); the report as a JSON-ready dict."""
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    started = time.monotonic()
    driver = facts.driver(DRIVER_LIMIT_S)
    ctx = checks.Context(facts.image(), driver, facts.expected_gpus(), facts.gpu_required())
    wanted = [(name, function, limit) for name, function, limit in checks.CHECKS
              if only is None or name in only]
    results: dict[str, Result] = {}
    pending = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(wanted) or 1) as pool:
        for name, function, limit in wanted:
            if name in checks.GPU_CHECKS and not driver.present:
                results[name] = Result(name, "skip", checks.NO_GPU, 0.0, limit)
                continue
            limit = max(min(limit, BUDGET_S - (time.monotonic() - started)), 1.0)
            pending[name] = pool.submit(_timed, name, function, ctx, limit)
        for name, future in pending.items():
            results[name] = future.result()  # each probe's own timeout bounds this
    ordered = [results[name] for name, _, _ in wanted]
    verdicts = {result.verdict for result in ordered}
    verdict = "fail" if "fail" in verdicts else "pass" if "pass" in verdicts else "skip"
    return {
        "verdict": verdict,
        "started": started_at,
        "seconds": round(time.monotonic() - started, 2),
        "image": asdict(ctx.image),
        "driver": {"version": driver.version, "cuda": driver.cuda},
        "gpus": [asdict(gpu) for gpu in driver.gpus],
        "expected_gpus": ctx.expected,
        "checks": [asdict(result) for result in ordered],
    }


def lines(report: dict) -> list[str]:
    """One line per check, then the verdict."""
    out = [f"{check['verdict'].upper():4}  {check['name']:<9} {check['figure']} "
           f"({check['seconds']:.1f} s, limit {check['limit_s']:.0f} s)" for check in report["checks"]]
    out.append(f"pod-canary: {summary(report)} in {report['seconds']:.1f} s")
    return out


def failed(report: dict) -> list[str]:
    return [check["name"] for check in report["checks"] if check["verdict"] == "fail"]


def summary(report: dict) -> str:
    """"pass", "skip (no NVIDIA GPU)" or "fail: vulkan, egl" (the status file's words)."""
    if report["verdict"] == "fail":
        return "fail: " + ", ".join(failed(report))
    if report["verdict"] == "skip":
        return f"skip ({report['checks'][0]['figure'] if report['checks'] else 'no checks'})"
    return "pass"
