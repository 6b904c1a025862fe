"""Unsubscribes the database could not take yet, kept in an append-only file until it can.

A one-click POST must never be refused while the process lives (RFC 8058: the reader clicked
once and will not click again). When the write waits too long (another process holds SQLite's
write lock), the request is appended here, fsync'd, and answered; the web process applies the
file when its next write succeeds, and every delivery applies it before each claim, so a
journaled reader is never sent to.

One JSON object a line: the subscriber, the list and the channel ("via": one-click, or page
for the unsubscribe page's button and the preferences page; a line without it is a
one-click). An appender and an applier share a lock file: the applier moves the journal
aside under the lock (so no line is appended to a file already read), applies the moved
file, then deletes it; one killed half-way leaves the moved file, applied next time
(unsubscribing twice changes nothing).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from digest.models import UnsubscribeChannel

Reader = tuple[int, str, UnsubscribeChannel]  # (subscriber id, list slug, how)


class UnsubscribeJournal:
    """The file of pending unsubscribes at `path` (its folder is made on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, readers: Sequence[Reader]) -> None:
        """Record the readers durably: on return the lines are on disk."""
        lines = "".join(
            json.dumps({"subscriber": sid, "list": slug, "via": str(via)}) + "\n"
            for sid, slug, via in readers
        )
        with self._locked():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, lines.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def _moved(self) -> list[Path]:
        return sorted(self.path.parent.glob(self.path.name + ".applying-*"))

    def pending(self) -> list[Reader]:
        """Every reader recorded and not yet applied."""
        with self._locked():
            files = [*self._moved(), self.path]
            return [reader for file in files if file.exists() for reader in _read(file)]

    def apply(self, write: Callable[[Sequence[Reader]], None]) -> int:
        """Hand every pending reader to `write` (the database's unsubscribe) and forget them
        once it returned; returns how many. What `write` raises is raised, the lines kept."""
        if not self.path.exists() and not self._moved():
            return 0  # the usual case, on every claim: no lock, no file made
        with self._locked():
            if self.path.exists():
                moved = f"{self.path.name}.applying-{os.getpid()}-{time.time_ns()}"
                self.path.rename(self.path.with_name(moved))
            files = self._moved()
        applied = 0
        for file in files:
            readers = _read(file)
            if readers:
                write(readers)
            file.unlink(missing_ok=True)  # another applier may have finished it
            applied += len(readers)
        return applied


def _read(file: Path) -> list[Reader]:
    # A line cut short by a crash while appending was never answered: it is skipped.
    readers: list[Reader] = []
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:  # applied by another process meanwhile
        return readers
    for line in text.splitlines():
        try:
            item = json.loads(line)
            reader = (int(item["subscriber"]), str(item["list"]))
            via = UnsubscribeChannel(item.get("via", UnsubscribeChannel.ONE_CLICK))
            readers.append((*reader, via))
        except (ValueError, KeyError, TypeError):
            continue
    return readers
