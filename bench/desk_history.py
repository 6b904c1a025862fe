"""The desk's edition history against `digest status`'s query, on the same ledger.

Builds a temp database (SQLite unless --url names another empty one) with --editions
editions of the daily list, each sent to --subscribers readers, with bounces, complaints and
unsubscribes, then times `edition_totals` (the history page: states, bounced, complained,
unsubscribed) and `editions_with_counts` (`digest status`: states and recent errors), best of
--runs, and prints both and their ratio. The history should stay within a small factor of the
status query however many editions it shows: a fixed number of grouped queries, none per row.

    .venv/bin/python bench/desk_history.py
    .venv/bin/python bench/desk_history.py --editions 60 --subscribers 20000
    .venv/bin/python bench/desk_history.py --url postgresql+psycopg://digest:digest@127.0.0.1:55432/x
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from digest.models import DeliveryState, SubscriptionStatus, UnsubscribeChannel
from digest.store import Enrolment, Store
from digest.store.schema import bounce_events, complaints, deliveries, make_engine, upgrade

START = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
PAGE = UnsubscribeChannel.PAGE


def build(store: Store, *, editions: int, subscribers: int) -> None:
    """The ledger: each edition to everyone, 2 % failed, 1 % deferred; some reader events."""
    store.sync_lists([("daily", "Daily")], now=START)
    people = [
        Enrolment(f"r{n}@example.hu", "", "", "", SubscriptionStatus.ACTIVE)
        for n in range(subscribers)
    ]
    store.enrol(people, "daily", now=START)
    for day in range(editions):
        at = START + timedelta(days=day)
        edition, _ = store.create_edition(
            list_slug="daily",
            edition_date=at.date(),
            now=at,
            cutoff=at,
            subject=f"Daily {day}",
            html="<p>x</p>",
            text="x",
            article_ids=[],
            slot_nonce=f"n{day}",
        )
        rows = []
        for sid in range(1, subscribers + 1):
            state = (
                DeliveryState.FAILED
                if sid % 50 == 0
                else DeliveryState.DEFERRED
                if sid % 100 == 1
                else DeliveryState.SENT
            )
            rows.append(
                {
                    "edition_id": edition.id,
                    "subscriber_id": sid,
                    "state": state,
                    "attempts": 1,
                    "last_reply": "250 ok" if state == DeliveryState.SENT else "550 5.1.1 no",
                    "message_id": f"<{day}.{sid}@x>",
                    "created_at": at,
                    "updated_at": at,
                    "sent_at": at if state == DeliveryState.SENT else None,
                }
            )
        events = [
            {
                "key": f"b{day}.{sid}",
                "source": "bench",
                "recipient": f"r{sid}@example.hu",
                "kind": "hard",
                "status": "5.1.1",
                "subscriber_id": sid,
                "edition_id": edition.id,
                "effect": "suppressed",
                "processed_at": at,
            }
            for sid in range(50, subscribers + 1, 500)
        ]
        reports = [
            {
                "key": f"c{day}.{sid}",
                "source": "bench",
                "feedback_type": "abuse",
                "user_agent": "bench",
                "reported_domain": "example.hu",
                "subscriber_id": sid,
                "edition_id": edition.id,
                "named_by": "verp",
                "effect": "complained",
                "processed_at": at,
            }
            for sid in range(7, subscribers + 1, 2000)
        ]
        with store.engine.begin() as tx:
            tx.execute(insert(deliveries), rows)
            tx.execute(insert(bounce_events), events)
            if reports:
                tx.execute(insert(complaints), reports)
        for sid in range(3 + day, subscribers + 1, 997):
            store.unsubscribe(sid, "daily", channel=PAGE, now=at + timedelta(hours=1))


def best(runs: int, work: Callable[[], object]) -> float:
    """The fastest of `runs` calls, in seconds."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editions", type=int, default=30)
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine, now=START)
        store = Store(engine)
        began = time.perf_counter()
        build(store, editions=args.editions, subscribers=args.subscribers)
        rows = args.editions * args.subscribers
        took = time.perf_counter() - began
        print(f"{engine.dialect.name}: {rows:,} ledger rows built in {took:.1f} s")
        history = best(args.runs, lambda: store.edition_totals(limit=args.editions))
        status = best(args.runs, lambda: store.editions_with_counts(limit=args.editions))
        totals = store.edition_totals(limit=args.editions)
        print(f"history ({args.editions} editions): {history * 1000:.1f} ms")
        print(f"digest status query (reference): {status * 1000:.1f} ms")
        print(f"ratio history / status: {history / status:.2f}")
        newest = totals[0]
        print(
            f"newest: sent {newest.state(DeliveryState.SENT):,}, failed "
            f"{newest.state(DeliveryState.FAILED):,}, bounced {newest.bounced}, complained "
            f"{newest.complained}, unsubscribed {newest.unsubscribed}"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
