"""`digest edition shape` as a user meets it: changes kept for the edition date, shown back,
and a bad subject or an unknown article refused in one line with a non-zero exit."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from digest.models import EditionShape
from digest.store import Store
from digest.store.schema import articles, make_engine
from tests.support.cli import run

DAY = "2026-12-24"


def test_shape_keeps_the_changes_and_refuses_bad_input(cli_env: dict[str, str]) -> None:
    engine = make_engine(cli_env["DIGEST_DATABASE_URL"])
    with engine.connect() as connection:
        first, second = connection.execute(select(articles.c.id).limit(2)).scalars().all()
    base = ("edition", "shape", "--list", "daily", "--date", DAY)
    done = run(
        *base, "--exclude", first, "--pin", second, "--subject", "Christmas Eve", env=cli_env
    )
    assert done.returncode == 0, done.stderr
    assert f"excluded: {first}" in done.stdout and f"lead: {second}" in done.stdout
    store = Store(engine)
    assert store.edition_shape("daily", date.fromisoformat(DAY)) == EditionShape(
        lead=second, excluded=frozenset({first}), subject="Christmas Eve"
    )
    crlf = run(*base, "--subject", "Hi\r\nBcc: all@example.com", env=cli_env)
    assert crlf.returncode != 0 and "must be one line" in crlf.stderr
    assert "Traceback" not in crlf.stderr and len(crlf.stderr.strip().splitlines()) == 1
    unknown = run(*base, "--exclude", "no-such-article", env=cli_env)
    assert unknown.returncode != 0 and "no article with id 'no-such-article'" in unknown.stderr
    back = run(*base, "--include", first, "--unpin", "--subject", "", env=cli_env)
    assert back.returncode == 0, back.stderr
    assert store.edition_shape("daily", date.fromisoformat(DAY)) == EditionShape()
    engine.dispose()
