"""One `digest run` leads on PostgreSQL; a standby takes over when the leader's connection dies."""

from __future__ import annotations

import pytest

from digest.store import Leadership
from digest.store.schema import make_engine


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_standby_takes_over_when_the_leader_dies(database_url: str) -> None:
    first, second = Leadership(make_engine(database_url)), Leadership(make_engine(database_url))
    try:
        assert first.leads()
        assert not second.leads()  # the lock is held: stand by
        assert first.leads()  # and the leader keeps it
        # The leader dies: its session (and with it the advisory lock) goes away.
        assert first._connection is not None
        first._connection.invalidate()
        assert second.leads()
        assert not first.leads()  # the old leader, back, now stands by
    finally:
        first.release()
        second.release()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_process_leads_on_sqlite(database_url: str) -> None:
    assert Leadership(make_engine(database_url)).leads()
    assert Leadership(make_engine(database_url)).leads()
