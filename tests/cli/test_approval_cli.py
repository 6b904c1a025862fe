"""`digest edition approve` as a user meets it: a list with approval = "required" makes its
edition on `digest send` and sends nothing until the command approves it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, RecordingHandler
from tests.support.cli import run


def held_config(tmp_path: Path) -> Path:
    """The repo's config with the daily list waiting for approval."""
    text = (ROOT / "config" / "digest.toml").read_text(encoding="utf-8")
    held = text.replace('slug = "daily"\n', 'slug = "daily"\napproval = "required"\n', 1)
    assert held != text
    path = tmp_path / "held.toml"
    path.write_text(held, encoding="utf-8")
    return path


def test_send_holds_the_edition_and_approve_delivers_it(
    cli_env: dict[str, str], tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _ = smtp_server
    env = {**cli_env, "DIGEST_CONFIG": str(held_config(tmp_path))}
    early = run("edition", "approve", "--list", "daily", env=env)
    assert early.returncode == 3 and "no edition of daily is waiting" in early.stderr
    held = run("send", "--list", "daily", env=env)
    assert held.returncode == 0, held.stderr
    assert "waits for approval: digest edition approve --list daily" in held.stdout
    assert handler.messages == []
    status = run("status", env=env)
    assert "approval: required, no deadline" in status.stdout

    approved = run("edition", "approve", "--list", "daily", "--by", "anna@example.org", env=env)
    assert approved.returncode == 0, approved.stderr
    count = len(handler.messages)
    assert count > 0 and "approved edition #1 of" in approved.stdout
    assert f"{count} sent" in approved.stdout
    again = run("edition", "approve", "--list", "daily", env=env)
    assert again.returncode == 3 and handler.messages[count:] == []


def test_a_list_without_approval_refuses_it(cli_env: dict[str, str]) -> None:
    refused = run("edition", "approve", "--list", "daily", env=cli_env)
    assert refused.returncode == 5 and 'sends without approval (approval = "auto")' in (
        refused.stderr
    )
