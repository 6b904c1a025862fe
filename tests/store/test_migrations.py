"""The Alembic migrations, on SQLite and PostgreSQL: they make exactly the tables
in digest/store/schema.py, take over a database the hand-made upgrades made, and
`digest init` runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, Table, inspect, select, text

from digest.errors import StoreError
from digest.store.schema import (
    UTCDateTime,
    alembic_config,
    deliveries,
    editions,
    lists,
    make_engine,
    metadata,
    subscribers,
    subscriptions,
    unsubscribes,
    upgrade,
)
from tests.conftest import NOW, ROOT

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
TABLES = {table.name for table in metadata.sorted_tables}
LEGACY_LAST = 5  # the hand-made upgrades' last version: five steps


def differences(engine: Engine) -> list[object]:
    """What autogenerate would write: every difference between the database and `metadata`."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def make_legacy(engine: Engine, version: int) -> None:
    """A database as the hand-made upgrades left it at `version`: the tables of revision 0001
    (which they ended at), and the number each one recorded."""
    legacy = MetaData()
    record = Table(
        "schema_version",
        legacy,
        Column("version", Integer, primary_key=True),
        Column("applied_at", UTCDateTime, nullable=False),
    )
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        connection.execute(text("DROP TABLE alembic_version"))
        legacy.create_all(connection)
        connection.execute(
            record.insert(), [{"version": v, "applied_at": NOW} for v in range(1, version + 1)]
        )
        connection.execute(lists.insert().values(slug="daily", name="Daily", created_at=NOW))


def test_the_migrations_make_exactly_the_tables_of_schema_py(database_url: str) -> None:
    engine = make_engine(database_url)
    assert HEAD is not None
    assert upgrade(engine, now=NOW) == HEAD
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    assert differences(engine) == []
    assert upgrade(engine, now=NOW) == HEAD  # nothing left to do
    assert revision(engine) == HEAD
    engine.dispose()


def test_a_database_made_by_the_hand_made_upgrades_is_taken_over(database_url: str) -> None:
    engine = make_engine(database_url)
    make_legacy(engine, LEGACY_LAST)

    assert upgrade(engine, now=NOW) == HEAD
    assert revision(engine) == HEAD
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    assert differences(engine) == []
    with engine.connect() as connection:  # the data stayed
        assert connection.execute(select(lists.c.slug)).scalars().all() == ["daily"]
    engine.dispose()


def test_an_older_hand_made_version_is_refused_and_left_alone(database_url: str) -> None:
    engine = make_engine(database_url)
    make_legacy(engine, 3)
    with pytest.raises(StoreError, match="at version 3 of the upgrades that came before Alembic"):
        upgrade(engine, now=NOW)
    assert "alembic_version" not in inspect(engine).get_table_names()
    engine.dispose()


def test_a_database_from_a_newer_digest_is_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine, now=NOW)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(StoreError, match="f00d"):
        upgrade(engine, now=NOW)
    engine.dispose()


def test_digest_init_creates_the_schema_through_the_cli(database_url: str) -> None:
    env = {**os.environ, "DIGEST_DATABASE_URL": database_url}
    for seeded in (True, False):  # the second time there is nothing to do
        result = subprocess.run(
            [sys.executable, "-m", "digest", "init", *(["--seed"] if seeded else [])],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"schema at revision {HEAD}" in result.stdout
    engine = make_engine(database_url)
    assert differences(engine) == []
    with engine.connect() as connection:
        slugs = connection.execute(select(lists.c.slug).order_by(lists.c.slug)).scalars().all()
    assert slugs == ["business", "daily", "weekly"]
    engine.dispose()


def test_the_migrations_ship_inside_the_package() -> None:
    folder = Path(alembic_config().get_main_option("script_location") or "")
    assert folder == ROOT / "digest" / "store" / "migrations"
    assert (folder / "env.py").is_file() and list((folder / "versions").glob("r*.py"))


def test_revision_0007_adds_edition_verdicts_and_takes_it_back(database_url: str) -> None:
    from alembic import command

    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0006")
    assert "edition_verdicts" not in inspect(engine).get_table_names()
    assert upgrade(engine, now=NOW) == HEAD  # an install at 0006 gets the table
    assert "edition_verdicts" in inspect(engine).get_table_names()
    assert differences(engine) == []
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0006")
    assert "edition_verdicts" not in inspect(engine).get_table_names()
    assert revision(engine) == "0006"
    engine.dispose()


def test_revision_0008_adds_edition_shapes_and_takes_it_back(database_url: str) -> None:
    from alembic import command

    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0007")
    assert "edition_shapes" not in inspect(engine).get_table_names()
    assert upgrade(engine, now=NOW) == HEAD  # an install at 0007 gets the table
    assert "edition_shapes" in inspect(engine).get_table_names()
    assert differences(engine) == []
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0007")
    assert "edition_shapes" not in inspect(engine).get_table_names()
    assert revision(engine) == "0007"
    engine.dispose()


def test_revision_0009_adds_clicks_and_takes_it_back(database_url: str) -> None:
    from alembic import command

    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0008")
    assert "clicks" not in inspect(engine).get_table_names()
    assert upgrade(engine, now=NOW) == HEAD  # an install at 0008 gets the table
    assert "clicks" in inspect(engine).get_table_names()
    assert differences(engine) == []
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0008")
    assert "clicks" not in inspect(engine).get_table_names()
    assert revision(engine) == "0008"
    engine.dispose()


def test_revision_0010_adds_unsubscribes_and_credits_the_earlier_ones(database_url: str) -> None:
    from alembic import command

    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0009")
        connection.execute(lists.insert().values(id=1, slug="daily", name="Daily", created_at=NOW))
        connection.execute(
            subscribers.insert(),
            [
                {"id": n, "email": f"r{n}@example.com", "email_key": f"r{n}@example.com",
                 "name": "", "locale": "en", "timezone": "", "created_at": NOW}
                for n in (1, 2, 3)
            ],
        )  # fmt: skip
        later = NOW + timedelta(days=1)
        connection.execute(
            editions.insert(),
            [
                {"id": 10 + n, "list_id": 1, "edition_date": (NOW + timedelta(days=n)).date(),
                 "created_at": NOW + timedelta(days=n), "cutoff": NOW, "subject": "s",
                 "html": "", "text": "", "article_ids": [], "slot_nonce": "n", "status": "done"}
                for n in (0, 1)
            ],
        )  # fmt: skip
        connection.execute(
            deliveries.insert(),
            [
                {"edition_id": edition, "subscriber_id": who, "state": "sent", "attempts": 1,
                 "message_id": f"<{edition}.{who}@x>", "created_at": at, "updated_at": at,
                 "sent_at": at}
                for edition, who, at in ((10, 1, NOW), (11, 1, later), (10, 2, NOW))
            ],
        )  # fmt: skip
        left = later + timedelta(hours=1)  # after both editions: credited to the newer one
        connection.execute(
            subscriptions.insert(),
            [
                {"subscriber_id": who, "list_id": 1, "status": status, "sections": None,
                 "created_at": NOW, "updated_at": left}
                for who, status in ((1, "unsubscribed"), (2, "unsubscribed"), (3, "active"))
            ],
        )  # fmt: skip
    assert "unsubscribes" not in inspect(engine).get_table_names()
    assert upgrade(engine, now=NOW) == HEAD  # an install at 0009 gets the table, filled
    assert differences(engine) == []
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                unsubscribes.c.subscriber_id, unsubscribes.c.edition_id, unsubscribes.c.channel
            ).order_by(unsubscribes.c.subscriber_id)
        ).all()
    assert [tuple(r) for r in rows] == [(1, 11, "unknown"), (2, 10, "unknown")]
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0009")
    assert "unsubscribes" not in inspect(engine).get_table_names()
    assert revision(engine) == "0009"
    engine.dispose()
