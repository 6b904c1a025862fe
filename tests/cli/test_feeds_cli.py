"""`digest articles import | add | list`, run as the main command will mount them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from digest.cli.articles import articles_commands
from digest.errors import ConfigError, InvalidInputError, NotFoundError
from digest.store.schema import make_engine, upgrade

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"

root = typer.Typer()


@root.callback()
def _root(config: Annotated[Path | None, typer.Option("--config")] = None) -> None:
    """Stands in for `digest`: the group reads --config from here."""


root.add_typer(articles_commands, name="articles")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    database = f"sqlite:///{tmp_path}/d.sqlite3"
    upgrade(make_engine(database), now=datetime(2026, 11, 26, tzinfo=UTC))
    path = tmp_path / "digest.toml"
    path.write_text(
        f'database_url = "{database}"\n'
        "[[feeds.sources]]\n"
        'name = "bp-politics"\n'
        'url = "https://budapestpost.example/politics.xml"\n'
        'sections = { "Politik" = "Europe" }\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str, stdin: str | None = None) -> typer.testing.Result:
    return CliRunner().invoke(root, ["--config", str(config), "articles", *args], input=stdin)


def test_import_then_list(config: Path) -> None:
    imported = run(config, "import", str(FEEDS / "rss.xml"), "--feed", "bp-politics")
    assert imported.exit_code == 0, imported.output
    assert "bp-politics: 2 new, 0 updated, 0 revised, 0 unchanged" in imported.output

    listed = run(config, "list")
    assert listed.exit_code == 0, listed.output
    assert "Parliament passes the budget & the tax code" in listed.output
    assert "Europe" in listed.output  # the configured feed's section mapping applied
    assert "bp-politics:" in listed.output

    since = run(config, "list", "--since", "2026-11-25T19:00:00+01:00")
    assert "Parliament passes" not in since.output


def test_import_of_an_unconfigured_file_takes_its_prefix_from_the_file_name(config: Path) -> None:
    result = run(config, "import", str(FEEDS / "broken" / "duplicate-ids.xml"))
    assert result.exit_code == 0, result.output
    assert "duplicate-ids: 2 new" in result.output
    assert (
        "repeats the id 'dup-1'" in result.output
    )  # the warning, on stderr (mixed in by the runner)


def test_add_from_an_argument_and_from_stdin(config: Path) -> None:
    record = {"id": "bp-1", "title": "Budget passed", "url": "https://budapestpost.example/a/1"}
    added = run(config, "add", json.dumps(record))
    assert (added.exit_code, added.output.strip()) == (0, "bp-1: added")
    updated = run(config, "add", stdin=json.dumps({**record, "title": "Budget passed at night"}))
    assert (updated.exit_code, updated.output.strip()) == (0, "bp-1: updated")
    assert "Budget passed at night" in run(config, "list").output


@pytest.mark.parametrize(
    ("args", "stdin", "error", "message"),
    [
        (("add", "{not json"), None, InvalidInputError, "article JSON: line 1"),
        (("add", "-"), "[1, 2]", InvalidInputError, "must be an object"),
        (
            ("add", '{"id": "x", "title": "t", "url": "javascript:alert(1)"}'),
            None,
            InvalidInputError,
            "not an http",
        ),
        (("import", "feed.xml", "--feed", "nope"), None, NotFoundError, "unknown feed 'nope'"),
        (
            ("import", str(FEEDS / "broken" / "invalid.xml")),
            None,
            InvalidInputError,
            "not well-formed XML",
        ),
        (("list", "--since", "yesterday"), None, ConfigError, "not an ISO date-time"),
    ],
    ids=[
        "bad-json",
        "not-an-object",
        "javascript-url",
        "unknown-feed",
        "invalid-feed",
        "bad-since",
    ],
)
def test_mistakes_raise_the_projects_errors(
    config: Path, args: tuple[str, ...], stdin: str | None, error: type[Exception], message: str
) -> None:
    result = run(config, *args, stdin=stdin)
    assert isinstance(result.exception, error)
    assert message in str(result.exception)


def test_every_command_has_help_and_an_example() -> None:
    for command in articles_commands.registered_commands:
        assert command.callback is not None and command.callback.__doc__
        assert "Example: digest articles " in command.callback.__doc__


def test_feeds_shows_each_configured_feeds_last_poll_and_its_error(config: Path) -> None:
    from digest.store import Store

    assert run(config, "feeds").output.strip().endswith("never polled\t0 articles")
    database = config.read_text(encoding="utf-8").split('"')[1]
    url = "https://budapestpost.example/politics.xml"
    Store(make_engine(database)).record_feed_poll(
        url,
        now=datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
        etag=None,
        last_modified=None,
        error="feed 'bp-politics': ValueError: Invalid IPv6 URL",
    )
    shown = run(config, "feeds")
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == (
        f"bp-politics\t{url}\t2026-11-26 09:30\t0 articles\t"
        "failed: feed 'bp-politics': ValueError: Invalid IPv6 URL"
    )


def test_import_base_url_resolves_a_files_relative_links(config: Path) -> None:
    source = str(FEEDS / "wild" / "relative-no-address.xml")
    without = run(config, "import", source)
    assert "0 new" in without.output and "no link" not in without.output
    imported = run(config, "import", source, "--base-url", "https://budapestpost.example/")
    assert imported.exit_code == 0, imported.output
    assert "1 new" in imported.output
    assert "Relative without an address" in run(config, "list").output
    refused = run(config, "import", source, "--base-url", "ftp://x")
    assert isinstance(refused.exception, InvalidInputError)
