"""Running `digest` as a user does: a separate process, in the checkout, with its own env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """`python -m digest ARGS`, output captured as text; never raises for a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def cli_environment(database: Path, *, port: int, folder: Path) -> dict[str, str]:
    """The variables that point `digest` at a test's database, SMTP server and folder."""
    return {
        "DIGEST_DATABASE_URL": f"sqlite:///{database}",
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_PREVIEW_DIR": str(folder / "preview"),
    }
