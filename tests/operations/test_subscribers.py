"""Subscriber imports, adds, removals and exports on a real SQLite file and PostgreSQL database
(EMAIL.md #14, #15, #70)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from digest.errors import InvalidInputError, NotFoundError
from digest.models import SubscriptionStatus
from digest.operations.subscribers import add, enrolment, export_csv, import_file, remove
from digest.store import Enrolled, Store
from digest.store.schema import make_engine, upgrade
from tests.conftest import NOW

ACTIVE, PENDING = SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING
UNSUBSCRIBED, BOUNCED = SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.BOUNCED
HEADER = "email,name,locale,timezone\n"


@pytest.fixture
def store(database_url: str) -> Store:
    engine = make_engine(database_url)
    upgrade(engine, now=NOW)
    store = Store(engine)
    store.sync_lists([("daily", "Daily"), ("weekly", "Weekly")], now=NOW)
    return store


def write(tmp_path: Path, text: str, *, name: str = "people.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def statuses(store: Store, list_slug: str = "daily") -> dict[str, SubscriptionStatus]:
    return {row.email: row.status for row in store.subscription_rows(list_slug=list_slug)}


def test_import_with_bom_and_crlf(store: Store, tmp_path: Path) -> None:
    text = (
        HEADER + "kovacs.anna@example.hu,Kovács Anna,hu,Europe/Budapest\n"
        "john@example.com,John Smith,en-GB,Europe/London\n"
    ).replace("\n", "\r\n")
    report = import_file(
        store, write(tmp_path, text, bom=True), list_slug="daily", status=ACTIVE, now=NOW
    )
    assert report.summary() == "2 added, 0 updated, 0 unchanged, 0 suppressed kept, 0 rejected"
    anna = store.subscriber_by_email("kovacs.anna@example.hu")
    assert (anna.name, anna.locale, anna.timezone) == ("Kovács Anna", "hu", "Europe/Budapest")
    assert statuses(store) == {"kovacs.anna@example.hu": ACTIVE, "john@example.com": ACTIVE}
    assert statuses(store, "weekly") == {}


BAD_ROWS = [
    ("not-an-address,Nobody,,", "is not a valid address"),
    ('"a@b.c, evil@x.y",Two People,,', "is not a valid address"),
    ("a@b.c, evil@x.y,Two People,,", "5 cells but the header has 4"),
    ('"Kiss Marta <kiss.marta@example.hu>",Marta,,', "is not a valid address"),
    ('eva@example.hu,"Eva\r\nBcc: evil@x.y",,', "contains a line break or NUL"),
    ("eva@example.hu,Eva,,Europe/Atlantis", "unknown time zone 'Europe/Atlantis'"),
    ("eva@example.hu,Eva,Hungarian language,", "is not a language tag"),
    ("eva@example.hu,Eva\x00,,", "contains a line break or NUL"),
    ("eva@exämple.hu\u200b,Eva,,", "is not a valid address"),
]


@pytest.mark.parametrize(
    ("row", "reason"),
    BAD_ROWS,
    ids=[
        "invalid-address",
        "two-addresses-quoted",
        "two-addresses-unquoted",
        "display-name",
        "crlf-in-name",
        "unknown-time-zone",
        "bad-locale",
        "nul-in-name",
        "zero-width-space",
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_the_rest_load(
    store: Store, tmp_path: Path, row: str, reason: str
) -> None:
    text = HEADER + "first@example.hu,First,,\n" + row + "\n" + "last@example.hu,Last,,\n"
    report = import_file(store, write(tmp_path, text), list_slug="daily", status=ACTIVE, now=NOW)
    [rejected] = report.rejected
    assert rejected.startswith("line 3: ") and reason in rejected, rejected
    assert set(statuses(store)) == {"first@example.hu", "last@example.hu"}
    assert (report.added, report.kept) == (2, 0)


def test_line_numbers_count_physical_lines(store: Store, tmp_path: Path) -> None:
    # A quoted cell over three lines and a blank line come before the bad rows.
    text = (
        "Email,Name,Notes\n"
        'ok@example.hu,Ok,"first line\nsecond line\nthird line"\n'
        "\n"
        "bad-one,Bad,\n"
        'bad@example.hu,"Bad\nName",\n'
        "bad-three,Bad,\n"
    )
    report = import_file(store, write(tmp_path, text), list_slug="daily", status=ACTIVE, now=NOW)
    assert [line.split(":")[0] for line in report.rejected] == ["line 6", "line 7", "line 9"]
    assert report.ignored_columns == ("notes",)
    assert report.added == 1


def test_addresses_merge_case_insensitively_and_keep_the_first_spelling(
    store: Store, tmp_path: Path
) -> None:
    text = HEADER + "Kovacs.Anna@Example.HU,Anna,,\nkovacs.anna@example.hu,,hu,\n"
    report = import_file(store, write(tmp_path, text), list_slug="daily", status=ACTIVE, now=NOW)
    # The domain is lower-cased; the local part keeps its case, since that is what we send to.
    assert statuses(store) == {"Kovacs.Anna@example.hu": ACTIVE}
    assert (report.added, report.updated) == (1, 1)  # the second row added the locale
    assert report.notes == ["line 3: same address as line 2, merged"]
    again = write(tmp_path, HEADER + "KOVACS.ANNA@EXAMPLE.HU,Anna,hu,\n", name="again.csv")
    report = import_file(store, again, list_slug="daily", status=ACTIVE, now=NOW)
    assert report.summary() == "0 added, 0 updated, 1 unchanged, 0 suppressed kept, 0 rejected"
    assert store.subscriber_by_email("kovacs.anna@EXAMPLE.hu").locale == "hu"


def test_reimport_keeps_suppressed_addresses_suppressed(store: Store, tmp_path: Path) -> None:
    text = HEADER + "gone@example.hu,Gone,,\ndead@example.hu,Dead,,\nstay@example.hu,Stay,,\n"
    path = write(tmp_path, text)
    import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW)
    remove(store, "Gone@Example.hu", list_slug="daily", now=NOW)
    store.mark_bounced(store.subscriber_by_email("dead@example.hu").id, now=NOW)

    report = import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW)
    assert report.summary() == "0 added, 0 updated, 1 unchanged, 2 suppressed kept, 0 rejected"
    assert statuses(store) == {
        "gone@example.hu": UNSUBSCRIBED,
        "dead@example.hu": BOUNCED,
        "stay@example.hu": ACTIVE,
    }
    with pytest.raises(InvalidInputError, match="stays so"):
        add(store, enrolment(email="gone@example.hu"), list_slug="daily", now=NOW)
    assert statuses(store)["gone@example.hu"] == UNSUBSCRIBED


def test_status_column_and_option(store: Store, tmp_path: Path) -> None:
    pending = write(tmp_path, "email\nnew@example.hu\nold@example.hu\n", name="pending.csv")
    import_file(store, pending, list_slug="daily", status=PENDING, now=NOW)
    assert set(statuses(store).values()) == {PENDING}
    confirmed = write(tmp_path, "email,status\nold@example.hu,active\n", name="confirmed.csv")
    assert import_file(store, confirmed, list_slug="daily", status=PENDING, now=NOW).updated == 1
    # A "pending" import never undoes a confirmation; a suppression list does suppress.
    report = import_file(store, pending, list_slug="daily", status=PENDING, now=NOW)
    assert report.unchanged == 2
    suppress = write(tmp_path, "email\nold@example.hu\n", name="suppress.csv")
    import_file(store, suppress, list_slug="daily", status=UNSUBSCRIBED, now=NOW)
    assert statuses(store) == {"new@example.hu": PENDING, "old@example.hu": UNSUBSCRIBED}


def test_missing_columns_and_blank_cells_leave_stored_values(store: Store, tmp_path: Path) -> None:
    full = write(tmp_path, HEADER + "eva@example.hu,Nagy Éva,hu,Europe/Budapest\n")
    import_file(store, full, list_slug="daily", status=ACTIVE, now=NOW)
    sparse = write(tmp_path, "Email,Phone\neva@example.hu,+36 1 234\n", name="sparse.csv")
    report = import_file(store, sparse, list_slug="weekly", status=ACTIVE, now=NOW)
    assert (report.added, report.ignored_columns) == (1, ("phone",))
    eva = store.subscriber_by_email("eva@example.hu")
    assert (eva.name, eva.locale, eva.timezone) == ("Nagy Éva", "hu", "Europe/Budapest")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,locale\nAnna,hu\n", "no 'email' column (found: 'name', 'locale')"),
        (b"email,email\na@example.hu,b@example.hu\n", "repeated columns in the header: email"),
        (b"email,name\na@example.hu,Anna\nb@example.hu,\xe9va\n", "line 3: not UTF-8 (byte 0xe9)"),
        (b"", "no 'email' column (found: none)"),
    ],
    ids=["no-email-column", "repeated-column", "latin-1", "empty-file"],
)
def test_a_file_that_cannot_be_read_is_one_error(
    store: Store, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=r"bad\.csv") as caught:
        import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW)
    assert message in str(caught.value)
    assert statuses(store) == {}


def test_a_row_for_another_list_is_refused(store: Store, tmp_path: Path) -> None:
    text = "email,list\na@example.hu,daily\nb@example.hu,weekly\nc@example.hu,\n"
    report = import_file(store, write(tmp_path, text), list_slug="daily", status=ACTIVE, now=NOW)
    assert report.rejected == ["line 3: row is for list 'weekly', not 'daily'"]
    assert set(statuses(store)) == {"a@example.hu", "c@example.hu"}


def test_export_round_trips(store: Store, tmp_path: Path) -> None:
    text = (
        HEADER + "kovacs.anna@example.hu,Kovács Anna,hu,Europe/Budapest\n"
        "=cmd|x@example.hu,Formula Address,,\n"
        "john@example.com,=1+2,en,\n"
        "gone@example.hu,Gone,,\n"
    )
    import_file(store, write(tmp_path, text), list_slug="daily", status=ACTIVE, now=NOW)
    remove(store, "gone@example.hu", list_slug="daily", now=NOW)
    first = io.StringIO()
    assert export_csv(store, first, list_slug="daily") == 4
    exported = first.getvalue()
    assert exported.splitlines()[0] == "email,name,locale,timezone,list,status"
    # A spreadsheet would run these cells as formulas: the apostrophe stops it.
    assert "john@example.com,'=1+2,en,,daily,active" in exported
    assert "'=cmd|x@example.hu,Formula Address,,,daily,active" in exported
    assert "gone@example.hu,Gone,,,daily,unsubscribed" in exported

    copy = Store(make_engine(f"sqlite:///{tmp_path / 'copy.sqlite3'}"))
    upgrade(copy.engine, now=NOW)
    copy.sync_lists([("daily", "Daily")], now=NOW)
    back = write(tmp_path, exported, name="export.csv")
    report = import_file(copy, back, list_slug="daily", status=ACTIVE, now=NOW)
    assert (report.added, report.rejected) == (4, [])
    second = io.StringIO()
    export_csv(copy, second)
    assert second.getvalue() == exported
    assert copy.subscriber_by_email("john@example.com").name == "=1+2"


def test_export_filters_by_list_and_status(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "email\na@example.hu\nb@example.hu\n")
    import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW)
    import_file(store, path, list_slug="weekly", status=ACTIVE, now=NOW)
    remove(store, "b@example.hu", list_slug="weekly", now=NOW)
    out = io.StringIO()
    export_csv(store, out, status=UNSUBSCRIBED)
    assert out.getvalue().splitlines()[1:] == ["b@example.hu,,,,weekly,unsubscribed"]
    rows = list(store.subscription_rows(page=1))  # paging does not lose or repeat rows
    assert [(r.email, r.list_slug) for r in rows] == [
        ("a@example.hu", "daily"),
        ("a@example.hu", "weekly"),
        ("b@example.hu", "daily"),
        ("b@example.hu", "weekly"),
    ]


def test_add_then_update_then_remove(store: Store) -> None:
    item = enrolment(email="Eva@Example.HU", name="Éva", timezone="Europe/Budapest")
    assert add(store, item, list_slug="daily", now=NOW) == (Enrolled.ADDED, ACTIVE)
    assert add(store, item, list_slug="daily", now=NOW) == (Enrolled.UNCHANGED, ACTIVE)
    renamed = enrolment(email="eva@example.hu", name="Nagy Éva", status=PENDING)
    assert add(store, renamed, list_slug="daily", now=NOW) == (Enrolled.UPDATED, ACTIVE)
    assert remove(store, "EVA@example.hu", list_slug="daily", now=NOW) == ("Eva@example.hu", ACTIVE)
    assert remove(store, "eva@example.hu", list_slug="daily", now=NOW)[1] is UNSUBSCRIBED
    assert statuses(store) == {"Eva@example.hu": UNSUBSCRIBED}


@pytest.mark.parametrize(
    ("email", "list_slug", "error"),
    [
        ("nobody@example.hu", "daily", NotFoundError),
        ("eva@example.hu", "weekly", NotFoundError),
        ("eva@example.hu", "monthly", NotFoundError),
    ],
    ids=["unknown-address", "not-on-that-list", "unknown-list"],
)
def test_remove_mistakes(store: Store, email: str, list_slug: str, error: type[Exception]) -> None:
    add(store, enrolment(email="eva@example.hu"), list_slug="daily", now=NOW)
    with pytest.raises(error):
        remove(store, email, list_slug=list_slug, now=NOW)


def test_a_big_file_merges_repeats_across_batches_and_keeps_suppressions(
    store: Store, tmp_path: Path
) -> None:
    """Rows are enrolled a batch at a time; a repeat thousands of lines later is still noted
    with the first line, later rows about one person see the earlier ones, and a suppression
    made before the file stays."""
    store.enrol([enrolment(email="gone@example.hu")], "daily", now=NOW)
    remove(store, "gone@example.hu", list_slug="daily", now=NOW)
    lines = [f"reader{i}@example.hu,Reader {i},," for i in range(5000)]
    lines[4000] = "READER7@example.hu,Seven Again,hu,"  # line 4002 repeats line 9
    lines[4500] = "gone@example.hu,Back Again,,"
    lines[4501] = "reader4600@example.hu,,en,"  # line 4503, before its own row
    report = import_file(
        store, write(tmp_path, HEADER + "\n".join(lines) + "\n"), list_slug="daily",
        status=ACTIVE, now=NOW,
    )  # fmt: skip
    assert report.notes == [
        "line 4002: same address as line 9, merged",
        "line 4602: same address as line 4503, merged",
    ]
    assert report.summary() == "4997 added, 2 updated, 0 unchanged, 1 suppressed kept, 0 rejected"
    seven = store.subscriber_by_email("reader7@example.hu")
    assert (seven.email, seven.name, seven.locale) == ("reader7@example.hu", "Seven Again", "hu")
    late = store.subscriber_by_email("reader4600@example.hu")
    assert (late.name, late.locale) == ("Reader 4600", "en")
    assert store.subscriber_by_email("gone@example.hu").name == ""
    assert statuses(store)["gone@example.hu"] is UNSUBSCRIBED
    assert sum(status is ACTIVE for status in statuses(store).values()) == 4997


def test_a_stray_byte_deep_in_a_big_file_imports_nothing(store: Store, tmp_path: Path) -> None:
    rows = "".join(f"reader{i}@example.hu,Reader {i},,\n" for i in range(300_000))
    path = tmp_path / "big.csv"
    path.write_bytes(HEADER.encode() + rows.encode() + b"late@example.hu,\xe9va,,\n")
    with pytest.raises(InvalidInputError, match=r"line 300002: not UTF-8 \(byte 0xe9\)"):
        import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW)
    assert statuses(store) == {}
