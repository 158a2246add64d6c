"""Sections of a streamed remote run (pods/remote.py, used by jobs): they pass through
a gateway-like PTY stream (banner, echoed input, prompts, CRLF) untouched, streamed as
they come, and a cut-off section has no exit status."""

from __future__ import annotations

from imagebuild.pods import remote

NONCE = "0123456789ab"


def gateway_output(*sections: tuple[str, str, int]) -> list[bytes]:
    script = "; ".join(remote.section("cmd", NONCE, tag) for tag, _, _ in sections)
    out = f"Welcome to the gateway\r\n\x1b[?2004hroot@pod:~# {script}\r\n\x1b[?2004l\r\n"
    for tag, body, code in sections:
        out += f"{NONCE}-{tag}-BEGIN\r\n{body.replace(chr(10), chr(13) + chr(10))}{NONCE}-{tag}-END {code}\r\n"
    out += "root@pod:~# exit\r\nlogout\r\n"
    return [line.encode() for line in out.splitlines(keepends=True)]


def test_sections_stream_in_order_without_the_noise():
    lines = iter(gateway_output(("A", '{"ok": true}\n', 0), ("LOG", "epoch 1\nloss\r0.5\n", 0),
                                ("B", "[]\n", 7)))
    assert remote.collect(lines, NONCE, "A") == ('{"ok": true}\n', 0)
    seen: list[bytes] = []
    assert remote.stream(lines, NONCE, seen.append, "LOG") == 0
    assert b"".join(seen) == b"epoch 1\nloss\r0.5\n"  # a progress bar's lone \r stays
    assert remote.collect(lines, NONCE, "B") == ("[]\n", 7)


def test_output_without_a_last_newline_is_kept_before_the_end_marker():
    lines = iter([f"{NONCE}-LOG-BEGIN\n".encode(), f"no newline{NONCE}-LOG-END 3\n".encode()])
    seen: list[bytes] = []
    assert remote.stream(lines, NONCE, seen.append, "LOG") == 3
    assert seen == [b"no newline"]


def test_the_echoed_script_is_not_taken_for_markers_and_a_cut_off_section_has_no_status():
    script = remote.section("pod-job list", NONCE, "OUT")
    assert f"{NONCE}-OUT-BEGIN" not in script and f"{NONCE}-OUT-END" not in script
    assert remote.collect(iter([f"# {script}\r\n".encode()]), NONCE, "OUT") == (None, None)
    cut = iter([f"{NONCE}-OUT-BEGIN\r\n".encode(), b'[{"name": "tr'])
    assert remote.collect(cut, NONCE, "OUT") == ('[{"name": "tr', None)
