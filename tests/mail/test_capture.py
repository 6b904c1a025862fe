"""The built-in capture server: each message becomes an .eml file holding the exact bytes sent."""

from __future__ import annotations

from pathlib import Path

from digest.mail.capture import Captured, CaptureServer
from digest.mail.transport import free_port
from digest.operations.publisher import Publisher
from tests.conftest import NOW, decoded_header, settings_for


def test_send_to_the_capture_server_saves_every_message(tmp_path: Path) -> None:
    port = free_port()
    seen: list[Captured] = []
    publisher = Publisher(settings_for(tmp_path, port))
    publisher.init(seed=True, now=NOW)
    with CaptureServer(tmp_path / "mail", host="127.0.0.1", port=port, on_message=seen.append):
        result = publisher.send("daily", now=NOW)
    files = sorted((tmp_path / "mail").glob("*.eml"))
    sent = result.report.counts["sent"]
    assert len(files) == len(seen) == sent
    assert {item.path for item in seen} == set(files)
    preview = publisher.preview(
        "daily", now=NOW, out_dir=tmp_path / "p", subscriber="odon.gyori@example.hu"
    )
    (saved,) = [item.path for item in seen if item.recipients == ("odon.gyori@example.hu",)]
    assert (
        saved.read_bytes().partition(b"\r\n")[2] == preview.eml.read_bytes().partition(b"\r\n")[2]
    )
    first = seen[0]
    assert first.subject == decoded_header(first.path.read_bytes(), "Subject")
    assert first.sender == "newsletter@budapestpost.example"
