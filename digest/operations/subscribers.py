"""Subscriber imports, additions, removals and exports: the operations behind `digest subscribers`.

Imports are for people who already opted in: a publisher's confirmed list moved from another
system, so rows default to active. New sign-ups never come through here: they confirm their
address through the web app's double opt-in (EMAIL.md #14). An unsubscribed or bounced address
stays suppressed whatever a file or a command says (#15).

One subscriber per mailbox: addresses merge case-insensitively, the local part included.
RFC 5321 lets a server treat `Anna@` and `anna@` as two mailboxes, but no mainstream provider
does, and two subscribers for one person would mean two copies of every edition and an
unsubscribe under one spelling that misses the other. The address keeps the spelling it was
first given (email-validator lower-cases only the domain), because that is what we send to.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from digest.errors import HeaderInjectionError, InvalidInputError, NotFoundError
from digest.intake.people import normalise_address, person
from digest.models import SubscriptionStatus
from digest.store import SUPPRESSED, Enrolled, Enrolment, Store

COLUMNS = ("email", "name", "locale", "timezone", "list", "status")  # what export writes
_KNOWN = frozenset(COLUMNS)
_BATCH = 2000  # rows per transaction: one fsync per row would make a big import crawl
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_HEADER_BREAKERS = re.compile(r"[\r\n\x00]")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): export
# puts a ' before it, and import takes that ' off again, so a file round-trips.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EXTRA = "\x00extra"  # not a possible column name: holds the cell count of an overlong row
# What spreadsheets separate cells with: Excel writes ";" where the decimal mark is a comma
# (Hungary, most of Europe), "\t" for "Unicode text", and some exports use "|".
DELIMITERS = (",", ";", "\t", "|")
_NOT_DELIMITERS = frozenset('"\r\n')


@dataclass
class ImportReport:
    """What an import did, row by row in summary, and each refused row with its reason."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # suppressed addresses the file would have made active again
    rejected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()

    def summary(self) -> str:
        """The one line a person reads after an import."""
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.kept} suppressed kept, {len(self.rejected)} rejected"
        )

    def count(self, outcome: Enrolled) -> None:
        """Add one row's outcome."""
        if outcome is Enrolled.ADDED:
            self.added += 1
        elif outcome is Enrolled.UPDATED:
            self.updated += 1
        elif outcome is Enrolled.UNCHANGED:
            self.unchanged += 1
        else:
            self.kept += 1


def _uncell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:2] in _FORMULA_START else value


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8 before a row is imported, naming the line; read in
    chunks, so a million-row file is never held whole."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # exc.object is what the decoder held: its own leftover bytes, then chunk
                    held = len(exc.object) - len(chunk)
                    line = lines + chunk[: max(exc.start - held, 0)].count(b"\n") + 1
                    raise InvalidInputError(
                        f"{path} line {line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x}); "
                        "save the file as UTF-8"
                    ) from exc
                lines += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # the file ends inside a character
        raise InvalidInputError(
            f"{path} line {lines + 1}: not UTF-8 (it ends inside a character); "
            "save the file as UTF-8"
        ) from exc
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _open(path: Path) -> TextIO:
    # utf-8-sig: Excel writes a BOM, other tools do not
    return path.open(encoding="utf-8-sig", newline="")


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV file opened for import: its column names, the separator it uses, and its rows,
    each non-blank one as (first line, {column: cell})."""

    names: tuple[str, ...]
    delimiter: str
    rows: Iterator[tuple[int, dict[str, str]]]


def _header(line: str, delimiter: str) -> list[str]:
    try:
        return [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter), [])]
    except csv.Error:
        return []


def _found(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names if name) or "none"


def _delimiter(path: Path, line: str, given: str | None) -> str:
    """The separator: the one given, else whichever of DELIMITERS splits the header `line` into
    an `email` column (the most columns wins, so a one-column file reads the same under all)."""
    if given is not None:
        if len(given) != 1 or given in _NOT_DELIMITERS:
            raise InvalidInputError(f"delimiter {given!r} must be one character, not a quote")
        if "email" not in _header(line, given):
            raise InvalidInputError(
                f"{path}: the header row has no 'email' column when split on {given!r} "
                f"(found: {_found(_header(line, given))})"
            )
        return given
    splits = {candidate: _header(line, candidate) for candidate in DELIMITERS}
    usable = [candidate for candidate in DELIMITERS if "email" in splits[candidate]]
    if not usable:
        widest = max(splits.values(), key=len)
        raise InvalidInputError(
            f"{path}: the header row has no 'email' column (found: {_found(widest)}); "
            "is the file separated by something else? try --delimiter ';'"
        )
    return max(usable, key=lambda candidate: len(splits[candidate]))


def read_rows(path: Path, *, delimiter: str | None = None) -> Table:
    """The file's header and rows, split on `delimiter`, or on the separator the header shows.

    Column names are matched case-insensitively; missing trailing cells are blank. A row with
    more cells than the header is marked, so an unquoted "a@b.c, evil@x.y" is refused. The rows
    are read as they are taken, not all at once.
    """
    _check_utf8(path)
    with _open(path) as handle:
        first = handle.readline()
    separator = _delimiter(path, first.split("\n", 1)[0].rstrip("\r"), delimiter)
    with _open(path) as handle:
        try:
            header = next(csv.reader(handle, delimiter=separator), [])
        except csv.Error as exc:
            raise InvalidInputError(f"{path} line 1: {exc}") from exc
    names = [name.strip().lower() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise InvalidInputError(f"{path}: repeated columns in the header: {', '.join(repeated)}")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with _open(path) as handle:
            reader = csv.reader(handle, delimiter=separator)
            next(reader, None)  # the header, read above
            before = reader.line_num
            while True:
                try:
                    cells = next(reader, None)
                except csv.Error as exc:
                    raise InvalidInputError(f"{path} line {reader.line_num}: {exc}") from exc
                if cells is None:
                    return
                start, before = before + 1, reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                row = {n: _uncell(cell) for n, cell in zip(names, cells, strict=False) if n}
                if len(cells) > len(names):  # even blank: the cells before it may have shifted
                    row[_EXTRA] = str(len(cells))
                yield start, row

    return Table(names=tuple(names), delimiter=separator, rows=rows())


def enrolment(
    *,
    email: str,
    name: str = "",
    locale: str = "",
    timezone: str = "",
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
) -> Enrolment:
    """One person checked for a list: a single valid address, a name that is safe in a header,
    a language tag and a known time zone. Raises InvalidInputError with the reason."""
    for what, value in (("name", name), ("locale", locale), ("timezone", timezone)):
        if _HEADER_BREAKERS.search(value):
            raise HeaderInjectionError(f"{what} {value[:40]!r} contains a line break or NUL")
    if locale.strip() and not _LOCALE.fullmatch(locale.strip()):
        raise InvalidInputError(f"locale {locale!r} is not a language tag such as hu or en-GB")
    who = person(email=email, name=name, locale=locale, timezone=timezone)
    return Enrolment(
        email=who.email, name=who.name, locale=who.locale, timezone=who.timezone, status=status
    )


def _row_enrolment(
    row: dict[str, str], *, list_slug: str, status: SubscriptionStatus, table: Table
) -> Enrolment:
    if _EXTRA in row:
        held = "a comma" if table.delimiter == "," else repr(table.delimiter)
        raise InvalidInputError(
            f"{row[_EXTRA]} cells but the header has {len(table.names)}; "
            f"quote a cell that holds {held}"
        )
    for_list = row.get("list", "").strip()
    if for_list and for_list != list_slug:
        raise InvalidInputError(f"row is for list {for_list!r}, not {list_slug!r}")
    given = row.get("status", "").strip().lower()
    if given:
        try:
            status = SubscriptionStatus(given)
        except ValueError:
            known = ", ".join(SubscriptionStatus)
            raise InvalidInputError(f"unknown status {given!r} (use {known})") from None
    return enrolment(
        email=row.get("email", ""),
        name=row.get("name", ""),
        locale=row.get("locale", ""),
        timezone=row.get("timezone", ""),
        status=status,
    )


def import_file(
    store: Store,
    path: Path,
    *,
    list_slug: str,
    status: SubscriptionStatus,
    now: datetime,
    delimiter: str | None = None,
) -> ImportReport:
    """Import a CSV of opted-in people into the list; bad rows are reported and skipped.

    Columns: email (required), name, locale, timezone, and optionally status (else `status`)
    and list (a row for another list is refused); any other column is ignored. Cells are
    separated by `delimiter`, or by whichever of DELIMITERS gives the header an email column.
    """
    table = read_rows(path, delimiter=delimiter)
    report = ImportReport(ignored_columns=tuple(n for n in table.names if n and n not in _KNOWN))
    seen = _SeenAddresses()
    batch: list[tuple[int, Enrolment]] = []

    def flush() -> None:
        firsts = seen.add([(item.email.lower(), line) for line, item in batch])
        for line, item in batch:
            first = firsts[item.email.lower()]
            if first != line:
                report.notes.append(f"line {line}: same address as line {first}, merged")
        for outcome in store.enrol([item for _, item in batch], list_slug, now=now):
            report.count(outcome)
        batch.clear()

    try:
        for line, row in table.rows:
            try:
                item = _row_enrolment(row, list_slug=list_slug, status=status, table=table)
            except InvalidInputError as exc:
                report.rejected.append(f"line {line}: {exc}")
                continue
            batch.append((line, item))
            if len(batch) >= _BATCH:
                flush()
        if batch:
            flush()
    finally:
        seen.close()
    return report


class _SeenAddresses:
    """The line each address of the file first appeared on, kept in a private temporary
    database on disk: a million-row import must not hold a million addresses in memory."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a temporary file, deleted on close
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")

    def add(self, rows: list[tuple[str, int]]) -> dict[str, int]:
        """Record the rows (address key, line) in file order; returns each key's first line."""
        keys = list({key for key, _ in rows})
        firsts: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT key, line FROM seen WHERE key IN ({marks})"
            firsts.update(self._db.execute(query, part).fetchall())
        fresh: dict[str, int] = {}
        for key, line in rows:
            if key not in firsts:
                firsts[key] = fresh[key] = line
        self._db.executemany("INSERT INTO seen VALUES (?, ?)", fresh.items())
        return firsts

    def close(self) -> None:
        self._db.close()


def add(
    store: Store, item: Enrolment, *, list_slug: str, now: datetime
) -> tuple[Enrolled, SubscriptionStatus]:
    """Put one person on the list; returns what changed and the status now in force.

    A suppressed address is refused, not resubscribed.
    """
    [outcome] = store.enrol([item], list_slug, now=now)
    if outcome is Enrolled.KEPT:
        raise InvalidInputError(
            f"{item.email} is unsubscribed or bounced on {list_slug!r} and stays so; "
            "only the reader can subscribe again, through the web app's confirmation"
        )
    subscriber = store.subscriber_by_email(item.email)
    return outcome, store.subscription_status(subscriber.id, list_slug) or item.status


def remove(
    store: Store, email: str, *, list_slug: str, now: datetime
) -> tuple[str, SubscriptionStatus]:
    """Unsubscribe the address from the list (a suppression: the row stays so no import can
    bring the address back). Returns the stored address and its status before."""
    try:
        address = normalise_address(email)
    except InvalidInputError:
        address = email.strip()  # an address stored before today's checks must still go
    subscriber = store.subscriber_by_email(address)
    before = store.subscription_status(subscriber.id, list_slug)
    if before is None:
        raise NotFoundError(f"{subscriber.email} is not on list {list_slug!r}")
    if before not in SUPPRESSED:
        store.subscribe(subscriber.id, list_slug, SubscriptionStatus.UNSUBSCRIBED, now=now)
    return subscriber.email, before


def export_csv(
    store: Store,
    out: TextIO,
    *,
    list_slug: str | None = None,
    status: SubscriptionStatus | None = None,
) -> int:
    """Write the subscriptions as CSV (header: `COLUMNS`), one row per subscriber and list, in
    the form `import_file` reads back; returns how many rows."""
    rows = store.subscription_rows(list_slug=list_slug, status=status)
    first = next(rows, None)  # reads the database before a byte is written: no half a file
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in itertools.chain([first] if first else [], rows):
        cells = (row.email, row.name, row.locale, row.timezone, row.list_slug, row.status)
        writer.writerow([_cell(str(cell)) for cell in cells])
        count += 1
    return count
