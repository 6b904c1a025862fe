"""CSV imports as spreadsheets write them: separated by commas, semicolons (Excel where the
decimal mark is a comma, as in Hungary), tabs or bars, told apart by the header or given."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import InvalidInputError
from digest.models import SubscriptionStatus
from digest.operations.subscribers import import_file, read_rows
from digest.store import Store
from digest.store.schema import make_engine, upgrade
from tests.conftest import NOW

ACTIVE = SubscriptionStatus.ACTIVE
# Names with commas, semicolons and bars in them, quoted as spreadsheets quote them.
PEOPLE = [
    ("odon.gyori@example.hu", "Győri Ödön", "hu", "Europe/Budapest"),
    ("hartmann@example.de", "Hartmann, Jürgen", "de", ""),
    ("kiss.marta@example.hu", "Kiss Márta; szerkesztő", "hu", ""),
    ("ulla@example.fi", "Ulla | Helsinki", "", "Europe/Helsinki"),
]


@pytest.fixture
def store(database_url: str) -> Store:
    engine = make_engine(database_url)
    upgrade(engine, now=NOW)
    store = Store(engine)
    store.sync_lists([("daily", "Daily")], now=NOW)
    return store


def csv_text(delimiter: str, *, header: str = "Email,Name,Locale,Timezone") -> str:
    """The people as a spreadsheet exports them: CRLF, a cell quoted when it holds the separator."""

    def cell(value: str) -> str:
        return f'"{value}"' if delimiter in value else value

    lines = [header.replace(",", delimiter)]
    lines += [delimiter.join(cell(value) for value in person) for person in PEOPLE]
    return "\r\n".join(lines) + "\r\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # Excel's "CSV UTF-8" has a BOM
    return path


def people(store: Store) -> set[tuple[str, str, str, str]]:
    found = set()
    for row in store.subscription_rows(list_slug="daily"):
        who = store.subscriber_by_email(row.email)
        found.add((who.email, who.name, who.locale, who.timezone))
    return found


@pytest.mark.parametrize(
    "delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "bar"]
)
def test_the_header_tells_the_separator(store: Store, tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path, csv_text(delimiter))
    assert read_rows(path).delimiter == delimiter
    report = import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW)
    assert report.summary() == "4 added, 0 updated, 0 unchanged, 0 suppressed kept, 0 rejected"
    assert people(store) == set(PEOPLE)


def test_a_given_delimiter_is_used(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, csv_text(";"))
    report = import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW, delimiter=";")
    assert report.added == 4 and people(store) == set(PEOPLE)


def test_a_one_column_file_reads_under_any_separator(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "email\r\nodon.gyori@example.hu\r\n")
    assert import_file(store, path, list_slug="daily", status=ACTIVE, now=NOW).added == 1


@pytest.mark.parametrize(
    ("text", "delimiter", "message"),
    [
        (
            "Email:Name\r\na@example.hu:Anna\r\n",
            None,
            "people.csv: the header row has no 'email' column (found: 'email:name'); is the "
            "file separated by something else? try --delimiter ';'",
        ),
        (
            "Name;Locale\r\nAnna;hu\r\n",
            None,
            "no 'email' column (found: 'name', 'locale'); is the file separated",
        ),
        (
            csv_text(";"),
            ",",
            "no 'email' column when split on ',' (found: 'email;name;locale;timezone')",
        ),
        (csv_text(";"), ";;", "delimiter ';;' must be one character, not a quote"),
        (csv_text(";"), '"', "delimiter '\"' must be one character, not a quote"),
    ],
    ids=["unknown-separator", "no-email-column", "wrong-delimiter", "two-characters", "quote"],
)
def test_a_separator_that_does_not_fit_is_one_error(
    store: Store, tmp_path: Path, text: str, delimiter: str | None, message: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        import_file(
            store, write(tmp_path, text), list_slug="daily", status=ACTIVE, now=NOW,
            delimiter=delimiter,
        )  # fmt: skip
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert people(store) == set()


def test_bad_rows_of_a_semicolon_file_keep_their_lines_and_reasons(
    store: Store, tmp_path: Path
) -> None:
    text = (
        "email;name\r\n"
        "first@example.hu;Első\r\n"
        "a@b.c; evil@x.y;Két Ember\r\n"
        '"hartmann@example.de, evil@x.y";Jürgen\r\n'
        "last@example.hu;Utolsó\r\n"
    )
    report = import_file(store, write(tmp_path, text), list_slug="daily", status=ACTIVE, now=NOW)
    assert report.rejected[0] == "line 3: 3 cells but the header has 2; quote a cell that holds ';'"
    assert report.rejected[1].startswith("line 4: 'hartmann@example.de, evil@x.y' is not a valid")
    assert {who[0] for who in people(store)} == {"first@example.hu", "last@example.hu"}
