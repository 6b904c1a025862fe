"""What the feed-fetching tests share: a local HTTP server to fetch from, and a store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from digest.store import Store
from digest.store.schema import make_engine, upgrade
from tests.conftest import NOW
from tests.support.feed_server import FeedServer, serving


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serving() as state:
        yield state


@pytest.fixture
def store(database_url: str) -> Store:
    engine = make_engine(database_url)
    upgrade(engine, now=NOW)
    return Store(engine)
