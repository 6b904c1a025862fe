"""The bounce mailbox read message by message: DSNs, ARF complaints, and everything else.

`digest bounces` points at whatever the mailbox is (a maildir, an mbox file, a folder of .eml
files, one .eml file); each message comes out as a BounceReport, a Complaint, or None.
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Callable, Iterator
from email.errors import MessageError
from functools import partial
from pathlib import Path

from digest.errors import ConfigError
from digest.intake.bounce_reports import BounceReport, parse_report
from digest.intake.complaints import Complaint, parse_complaint

_log = logging.getLogger(__name__)


def _sources(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Each message under `path` as (name for messages, how to read its bytes)."""
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        maildir = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(maildir.iterkeys()):
            yield f"{path} [{key}]", partial(maildir.get_bytes, key)
    elif path.is_dir():
        for file in sorted(path.glob("*.eml")):
            yield str(file), file.read_bytes
    elif path.is_file():
        with path.open("rb") as head:
            is_mbox = head.read(5) == b"From "  # RFC 4155: every message starts "From "
        if not is_mbox:
            yield str(path), path.read_bytes
            return
        box = mailbox.mbox(path, factory=None, create=False)
        for number, key in enumerate(box.iterkeys(), start=1):
            yield f"{path} [message {number}]", partial(box.get_bytes, key)
    else:
        raise ConfigError(f"{path} does not exist")


def read_message(raw: bytes) -> BounceReport | Complaint | None:
    """One message as a complaint (ARF), a bounce (RFC 3464 or prose), or None."""
    return parse_complaint(raw) or parse_report(raw)


def read_reports(path: Path) -> Iterator[tuple[str, BounceReport | Complaint | None]]:
    """(source, report) for every message in a maildir, an mbox file, a folder of .eml files or
    one .eml file; None for mail that is neither a bounce nor a complaint. A message that
    cannot be read is logged with its name and skipped, so one broken file does not stop the
    rest."""
    for name, read in _sources(path):
        try:
            report = read_message(read())
        except (OSError, ValueError, LookupError, MessageError) as exc:
            _log.warning("%s: cannot be read as mail: %s", name, exc)
            continue
        yield name, report
