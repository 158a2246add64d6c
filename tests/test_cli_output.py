"""Tables on a narrow terminal and in a pipe (issue 26): one row per item, the least
useful column gives way first, and nothing a user tells pods apart by is cut."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from conftest import record_push

from imagebuild.cli import tables

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "registry.example/you/research-pod@sha256:" + "ab" * 32
NAMES = ("uxh-pod-seed-1", "uxh-pod-seed-2")


def _two_pods(cli: PodCli) -> None:
    record_push(cli.workdir, image=IMAGE, cuda="12.6")
    for name in NAMES:
        assert cli("pod", "create", "--name", name, "--no-wait").code == 0


def test_pod_list_at_60_columns_keeps_names_and_status_whole(fake_runpod, pod_cli: PodCli):
    _two_pods(pod_cli)
    lines = pod_cli("pod", "list", env={"COLUMNS": "60"}).stdout.splitlines()
    rows = [line for line in lines if line.split()[0] not in ("ID", "total")]
    assert len(rows) == 2 and all(len(line) <= 60 for line in lines), lines
    for name in NAMES:  # the names that tell the pods apart, whole
        assert any(f" {name} " in f"{row} " for row in rows), lines
    assert all(any(f" {status} " in row for status in ("PROVISIONING", "STARTING", "RUNNING"))
               for row in rows), lines  # the status whole, never RUNNI…
    assert all(pod_id not in pod_cli("pod", "list", env={"COLUMNS": "60"}).stdout
               for pod_id in fake_runpod.pods)  # the id is what gave way
    assert all(row.split()[0].endswith("…") for row in rows), rows


def test_pod_list_piped_is_one_whole_line_per_pod(fake_runpod, pod_cli: PodCli):
    _two_pods(pod_cli)
    lines = pod_cli("pod", "list", env={"COLUMNS": None}).stdout.splitlines()
    rows = [line for line in lines if line.split()[0] in fake_runpod.pods]
    assert len(rows) == 2 and "…" not in "".join(lines), lines
    assert {row.split()[1] for row in rows} == set(NAMES)


def test_gpus_at_60_columns_is_one_line_per_gpu(fake_runpod, pod_cli: PodCli):
    wide = pod_cli("gpus", env={"COLUMNS": "300"}).stdout.splitlines()
    narrow = pod_cli("gpus", env={"COLUMNS": "60"}).stdout.splitlines()
    assert len(narrow) == len(wide) and all(len(line) <= 60 for line in narrow[:-1]), narrow
    aliases = [line.split()[0] for line in wide[1:-1]]
    assert [line.split()[0] for line in narrow[1:-1]] == aliases  # what --gpu takes, whole


def test_columns_give_way_in_their_order_and_never_below_their_floor():
    columns = [tables.Column("ID", squeeze=1, keep=6), tables.Column("NAME"),
               tables.Column("SSH", squeeze=2)]
    rows = [["abcdefghijklmn", "a-long-pod-name", "root@203.0.113.9:22022"]]
    full = tables.render(columns, rows, None)
    assert full[1].split() == rows[0]
    cut_id = tables.render(columns, rows, 48)  # the id gives way first, the ssh stays
    assert cut_id[1].split()[0].endswith("…") and "root@203.0.113.9:22022" in cut_id[1]
    no_ssh = tables.render(columns, rows, 30)  # then the ssh column goes, the name never
    assert "SSH" not in no_ssh[0] and "a-long-pod-name" in no_ssh[1] and len(no_ssh[1]) <= 30


def test_the_build_table_keeps_layer_state_and_time_at_60_columns(monkeypatch):
    from rich.console import Console

    from imagebuild.image.progress import LiveReporter

    monkeypatch.setenv("COLUMNS", "60")
    reporter = LiveReporter(["system", "python", "simulators", "runtime"])
    reporter.rows["simulators"] = ["building", "12s", "#5 [2/9] RUN uv pip install mani-skill==3.0.1 "
                                   "--torch-backend cu128 --no-cache"]
    reporter.rows["python"] = ["up to date", "0.1s", ""]
    console = Console(file=io.StringIO(), width=60)
    console.print(reporter._table())
    lines = console.file.getvalue().splitlines()
    assert lines[0].split()[:3] == ["layer", "state", "time"], lines
    assert "simulators  building    12s" in lines[3] and "up to date  0.1s" in lines[2], lines
    assert all(len(line) <= 60 for line in lines)
