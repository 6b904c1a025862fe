"""One `digest run` leads on PostgreSQL; a standby takes over when the leader's connection dies."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, text

from digest.store import Leadership
from digest.store.schema import make_engine


def _wait_until_ended(engine: Engine, backend: int) -> None:
    """The server ends a dead client's session when it reads the closed socket, a moment later."""
    deadline = time.monotonic() + 10
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            if not connection.execute(query, {"pid": backend}).scalar():
                return
            connection.rollback()
            time.sleep(0.01)
    raise AssertionError(f"the server kept the dead leader's session {backend} for 10 s")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_standby_takes_over_when_the_leader_dies(database_url: str) -> None:
    first, second = Leadership(make_engine(database_url)), Leadership(make_engine(database_url))
    try:
        assert first.leads()
        assert not second.leads()  # the lock is held: stand by
        assert first.leads()  # and the leader keeps it
        # The leader dies: its session (and with it the advisory lock) goes away.
        assert first._connection is not None
        backend = first._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        assert isinstance(backend, int)
        first._connection.invalidate()
        _wait_until_ended(second.engine, backend)
        assert second.leads()
        assert not first.leads()  # the old leader, back, now stands by
    finally:
        first.release()
        second.release()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_process_leads_on_sqlite(database_url: str) -> None:
    assert Leadership(make_engine(database_url)).leads()
    assert Leadership(make_engine(database_url)).leads()
