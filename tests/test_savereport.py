"""Reading pod-save's output as it comes over SSH, and the report for people.

The end-to-end runs against real pods are in test_safe_terminate.py; these pin the
framing and wording cases a real pod does not produce on demand."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from imagebuild.pods import podsave, remote, savereport
from imagebuild.pods.ssh import Endpoint

NONCE = "a1b2c3d4e5f6"
REPORT = {
    "ok": False, "dry_run": False, "pod_id": "p1", "timestamp": "20250101T000000Z", "workspace": "/workspace",
    "repos": [
        {"path": "/workspace/code/proj", "status": "failed", "reason": "main: rejected", "remote": "origin",
         "url": "git@github.com:me/proj.git",
         "branches": [{"name": "main", "remote": "origin", "ref": "refs/heads/main", "ahead": 2,
                       "status": "failed", "reason": "rejected, non-fast-forward"},
                      {"name": "dev", "remote": "origin", "ref": "refs/heads/dev", "ahead": 0,
                       "status": "up-to-date", "reason": None}],
         "snapshot": {"ref": "refs/heads/autosave/p1/20250101T000000Z", "commit": "c" * 40, "remote": "origin",
                      "files": 3, "status": "pushed", "reason": None},
         "stashes": [], "skipped_files": [{"path": "data/big.bin", "bytes": 200 * 2**20}]},
        {"path": "/workspace/code/clean", "status": "clean", "reason": None, "remote": "origin",
         "url": "u", "branches": [], "snapshot": None, "stashes": [], "skipped_files": []},
    ],
    "wandb": [{"path": "/workspace/wandb/offline-run-1", "status": "failed", "reason": "network"}],
    "hooks": [{"name": "10-upload", "path": "/x", "status": "timeout", "exit_code": None, "seconds": 2.0,
               "reason": "timed out after 2 s", "output": ""},
              {"name": "20-ok", "path": "/y", "status": "ok", "exit_code": 0, "seconds": 0.1,
               "reason": None, "output": ""}],
}


def remote_script() -> str:
    return "\n".join(remote.typed_lines(podsave.command(), NONCE))


def test_gateway_output_with_echo_prompts_and_crlf():
    body = json.dumps(REPORT, indent=2).replace("\n", "\r\n")
    script = remote_script()
    output = (f"Welcome\r\n\x1b[?2004hroot@pod:~# {script}\r\n\x1b[?2004l\r\n{NONCE}-BEGIN\r\n"
              f"{body}\r\n{NONCE}-END 1\r\nroot@pod:~# exit\r\nlogout\r\n")
    text, code = remote.parse(output, NONCE)
    assert code == 1 and json.loads(text) == REPORT


def test_the_echoed_command_line_is_not_taken_for_the_markers():
    script = remote_script()
    assert f"{NONCE}-BEGIN" not in script and f"{NONCE}-END" not in script
    assert remote.parse(f"root@pod:~# {script}\r\n", NONCE) == (None, None)


def test_a_cut_off_report_has_no_exit_status():
    text, code = remote.parse(f"{NONCE}-BEGIN\n{{\"ok\": tr", NONCE)
    assert code is None and text.startswith("{")


def fake_ssh(tmp_path: Path, script: str) -> str:
    path = tmp_path / "ssh"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_unreachable_pod_is_an_error_not_a_report(tmp_path):
    ssh = fake_ssh(tmp_path, "echo 'ssh: connect to host 10.0.0.9 port 22: Connection refused' >&2; exit 255\n")
    result = podsave.run(Endpoint("direct", "10.0.0.9", 22, "root"), ssh=ssh)
    assert not result.ok and result.report is None
    assert result.error == "cannot reach the pod over SSH (root@10.0.0.9:22): " \
                           "ssh: connect to host 10.0.0.9 port 22: Connection refused"


def test_an_image_without_pod_save_says_so(tmp_path):
    # Runs the remote script here, where there is no pod-save: the shell's 127.
    ssh = fake_ssh(tmp_path, 'for a; do last=$a; done\nPATH=/usr/bin:/bin; eval "$last"\n')
    result = podsave.run(Endpoint("direct", "h", 22, "root"), ssh=ssh)
    assert result.error is not None and "pod-save is not on the pod" in result.error


def test_unsaved_lists_exactly_what_would_be_lost():
    assert savereport.unsaved(REPORT) == [
        "code/proj: branch main, 2 commit(s) (rejected, non-fast-forward)",
        "code/proj: file data/big.bin (too big for a snapshot)",
        "wandb run wandb/offline-run-1 (network)",
        "save hook 10-upload: timeout (timed out after 2 s)",
    ]


def test_the_host_says_what_the_pods_pod_save_says():
    """One renderer: the host loads the image's own report.py (the file the image
    ships), so the laptop and the pod print the same lines for one report."""
    import importlib.util

    import imagebuild

    path = Path(imagebuild.__file__).parent / "entrypoint" / "lib" / "podsave" / "report.py"
    spec = importlib.util.spec_from_file_location("podsave_report_as_in_the_image", path)
    image_side = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(image_side)
    from imagebuild import contract

    assert image_side.FORMAT == contract.SAVE_REPORT_FORMAT
    assert savereport.text(REPORT) == image_side.format_human(REPORT)
    assert savereport.unsaved(REPORT) == image_side.lost_lines(REPORT)


def test_the_text_marks_failures_and_skips_what_was_up_to_date():
    # REPORT has no "format", "policy" or "inventory": an older image's report reads too.
    lines = savereport.text(REPORT).splitlines()
    assert "      failed     branch main, 2 commit(s): rejected, non-fast-forward" in lines
    assert not any("branch dev" in line for line in lines)
    assert "      pushed     snapshot autosave/p1/20250101T000000Z (3 changed file(s))" in lines
    assert "  clean      code/clean -> origin (u)" in lines
    assert "  FAILED     10-upload (2 s): timed out after 2 s" in lines
    assert lines[-1].startswith("NOT everything is saved")
    assert savereport.text({**REPORT, "ok": True, "repos": []}).splitlines()[-1] == "everything is saved"


def test_inventory_refs_and_rclone_are_listed_once():
    report = {**REPORT, "format": 1, "repos": [{**REPORT["repos"][0], "refs": [
        {"name": "tag v1", "ref": "refs/heads/autosave/p1/x-tag-v1", "commit": "d" * 40,
         "remote": "origin", "status": "failed", "reason": "network"}],
        "skipped_files": [{"path": ".env", "bytes": 10, "reason": "looks like a secret"}]}],
        "sync": [{"path": "results", "remote": "b:r", "status": "failed", "reason": "rclone copy: x",
                  "seconds": 1.0}],
        "inventory": {"unsaved": [
            {"path": "/workspace/code/proj/.env", "bytes": 10, "reason": "looks like a secret"},
            {"path": "/workspace/results", "bytes": 2048, "reason": "rclone to b:r failed: x"},
            {"path": "/workspace/notes", "bytes": 3 * 2**20, "reason": "not in a git repository"}]}}
    lost = savereport.unsaved(report)
    assert "code/proj: tag v1 (network)" in lost
    assert "code/proj: file .env (looks like a secret)" in lost
    assert "rclone results -> b:r (rclone copy: x)" in lost
    assert "notes, 3.0 MB (not in a git repository)" in lost
    assert not any(line.startswith(("results,", "code/proj/.env")) for line in lost)
    assert "  NOT SAVED  notes (3.0 MB): not in a git repository" in savereport.text(report).splitlines()


def test_what_the_policy_discarded_is_listed_with_sizes_biggest_first():
    report = {**REPORT, "inventory": {"unsaved": [], "discarded_bytes": 3 * 2**30 + 5000,
                                      "discarded": [
        {"path": "/workspace/.cache", "rule": ".cache", "bytes": 5000},
        {"path": "/workspace/datasets/mnist", "rule": "datasets/*", "bytes": 3 * 2**30}]}}
    lines = savereport.text(report).splitlines()
    at = lines.index("discarded by the policy (3.0 GB, re-creatable; lost with this pod's volume):")
    assert lines[at + 1:at + 3] == ["  discarded  datasets/mnist (3.0 GB) [datasets/*]",
                                    "  discarded  .cache (4.9 KB) [.cache]"]
