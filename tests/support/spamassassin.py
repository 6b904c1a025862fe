"""Debian's SpamAssassin (`spamassassin -L -t`) over messages, in one process for all of them.

Its start (loading and compiling ~3,000 rules) costs 1-2 s, the messages themselves little, so
the callers hand over everything they want scored at once; the messages go in one mbox.
Local tests only (-L: no DNS blocklists, no Razor/Pyzor/DCC), no Bayes (an empty home, a
prefs file of our own), so the scores say what the rules see in the message and nothing else.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.databases import in_ci

SPAMASSASSIN = shutil.which("spamassassin")
# _TESTSSCORES_ gives every rule that hit with its exact score (the report rounds to 0.1).
SCORES_HEADER = "X-Spam-Tests"
_ADD_SCORES = "add_header all Tests _TESTSSCORES(,)_"
# The title line, a blank line, then the table up to a blank line or the message's end.
_REPORT = re.compile(r"^Content analysis details:.*?\n\n.*?(?:\n\n|\n?\Z)", re.S | re.M)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What SpamAssassin said about one message: each rule that hit with its score."""

    rules: dict[str, float]
    report: str  # the "Content analysis details" table, for failure messages

    @property
    def score(self) -> float:
        return sum(self.rules.values())


def need_spamassassin() -> str:
    """The spamassassin program; skipped without it, but a failure when CI=true."""
    if SPAMASSASSIN is None:
        reason = "spamassassin is not installed (apt-get install spamassassin; make services)"
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return SPAMASSASSIN


def score_messages(messages: Mapping[str, bytes], folder: Path) -> dict[str, Verdict]:
    """Score each message (by a name of the caller's) with one `spamassassin -L -t` run.

    Every message needs a Message-ID of its own: SpamAssassin may hand an mbox back in
    another order, so the results are matched by it.
    """
    program = need_spamassassin()
    folder.mkdir(parents=True, exist_ok=True)
    by_id: dict[str, str] = {}
    box = mailbox.mbox(folder / "in.mbox")
    for name, data in messages.items():
        entry = mailbox.mboxMessage(data)
        message_id = str(entry["Message-ID"]).strip()
        assert message_id and message_id not in by_id, f"{name}: needs a Message-ID of its own"
        by_id[message_id] = name
        box.add(entry)
    box.flush()
    box.close()
    home = folder / "home"
    home.mkdir(exist_ok=True)
    prefs = folder / "user_prefs"
    prefs.write_text("use_bayes 0\nuse_auto_whitelist 0\n", encoding="ascii")
    with (folder / "in.mbox").open("rb") as source:
        done = subprocess.run(
            [program, "-L", "-t", "--mbox", "-x", "-p", str(prefs), f"--cf={_ADD_SCORES}"],
            stdin=source,
            capture_output=True,
            env={**os.environ, "HOME": str(home)},
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    (folder / "out.mbox").write_bytes(done.stdout)
    verdicts: dict[str, Verdict] = {}
    for scored in mailbox.mbox(folder / "out.mbox"):
        name = by_id[str(scored["Message-ID"]).strip()]
        verdicts[name] = _verdict(scored)
    assert set(verdicts) == set(messages), done.stderr.decode(errors="replace")
    return verdicts


def _verdict(scored: mailbox.mboxMessage) -> Verdict:
    header = scored[SCORES_HEADER]
    assert header is not None, f"spamassassin added no {SCORES_HEADER} header"
    rules: dict[str, float] = {}
    for item in " ".join(str(header).split()).replace(" ", "").split(","):
        if item and item != "none":
            rule, _, points = item.partition("=")
            rules[rule] = float(points)
    raw = scored.as_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
    found = _REPORT.search(raw)
    return Verdict(rules=rules, report=found.group(0) if found else raw[-2000:])
