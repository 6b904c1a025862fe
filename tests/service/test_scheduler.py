"""`digest run`'s jobs against a real SMTP server and real SQLite, driven by a made-up clock.

The Runner reads the time only through the clock it is given, so missed runs, restarts,
per-subscriber send times and two schedulers on one database are tested without sleeping.
One test lets APScheduler itself fire a job, bounded by an event the job sets.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from rich.console import Console
from sqlalchemy import update

from digest.cli.run import show_schedule
from digest.config import FeedSettings, Settings
from digest.models import DeliveryState, EditionStatus, RunOutcome
from digest.operations.delivery import Watch
from digest.operations.publisher import Publisher
from digest.service.log_format import JsonLines
from digest.service.scheduler import Runner, build_scheduler
from digest.store.schema import subscribers
from tests.conftest import NOW, RecordingHandler, settings_for
from tests.support.feed_server import Route, serving

BUDAPEST = ZoneInfo("Europe/Budapest")


def bp(*args: int) -> datetime:
    return datetime(*args, tzinfo=BUDAPEST)  # type: ignore[misc]


@dataclass
class Clock:
    """The only clock the Runner reads; a test moves it by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def message_ids(handler: RecordingHandler) -> list[str]:
    return [str(m.message["Message-ID"]) for m in handler.messages]


def assert_each_copy_went_once(publisher: Publisher, slug: str, handler: RecordingHandler) -> None:
    """The list has one edition; the server got each of its ledger rows once, and no more."""
    edition = publisher.store.latest_edition(slug)
    assert edition is not None
    rows = publisher.store.deliveries(edition.id)
    assert rows and {row["state"] for row in rows} == {DeliveryState.SENT}
    sent = Counter(message_ids(handler))
    mine = {row["message_id"] for row in rows}
    assert {mid: n for mid, n in sent.items() if mid in mine} == dict.fromkeys(mine, 1)


def test_down_at_seven_up_at_quarter_to_eight_sends_one_edition(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _ = smtp_server
    clock = Clock(bp(2026, 3, 2, 7, 45))
    Runner(publisher, clock=clock).sweep()  # what `digest run` does first on starting
    edition = publisher.store.latest_edition("daily")
    assert edition is not None and edition.created_at == clock.now
    assert_each_copy_went_once(publisher, "daily", handler)
    assert publisher.store.latest_edition("weekly") is None  # Monday 08:00: not yet
    count = len(handler.messages)

    clock.now = bp(2026, 3, 2, 7, 50)
    Runner(publisher, clock=clock).sweep()
    restarted = Runner(Publisher(publisher.settings), clock=Clock(bp(2026, 3, 2, 7, 55)))
    decision = restarted.check_list("daily")
    assert decision is not None and decision.run is None  # the database remembers 07:00
    assert len(handler.messages) == count
    last = publisher.store.last_run("daily")
    assert last is not None
    assert (last.slot, last.outcome, last.edition_id) == (NOW, RunOutcome.RAN, edition.id)


def test_up_after_the_grace_period_records_a_missed_edition(
    publisher: Publisher,
    smtp_server: tuple[RecordingHandler, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, _ = smtp_server
    runner = Runner(publisher, clock=Clock(bp(2026, 3, 1, 7, 0, 30)))
    runner.check_list("daily")  # it ran on Sunday; then it was down from before 07:00 Monday
    assert publisher.store.last_run("daily") is not None
    handler.messages.clear()
    runner.clock = Clock(bp(2026, 3, 2, 13, 30))
    with caplog.at_level(logging.INFO, logger="digest.service.scheduler"):
        decision = runner.check_list("daily")
        assert runner.check_list("daily") is not None  # the next sweep: reported once only
    assert decision is not None and decision.run is None and decision.missed == (NOW,)
    assert not handler.messages
    latest = publisher.store.latest_edition("daily")
    assert latest is None or latest.edition_date < NOW.date()
    (missed,) = publisher.store.recent_runs(outcome=RunOutcome.MISSED)
    assert (missed.list_slug, missed.slot) == ("daily", NOW)
    lines = [r for r in caplog.records if r.getMessage().startswith("missed edition")]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "list daily was due at 2026-03-02 07:00 CET" in lines[0].getMessage()
    assert lines[0].__dict__["list"] == "daily"

    console = Console(file=io.StringIO(), width=300)
    show_schedule(console, publisher.settings.lists, publisher.store, now=bp(2026, 3, 2, 13, 31))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "daily: next run 2026-03-03 07:00 CET (0 7 * * *, Europe/Budapest)" in shown
    assert "last run: 2026-03-02 07:00 CET missed" in shown
    assert "missed editions" in shown and "daily: due 2026-03-02 07:00 CET" in shown
    assert "weekly: next run 2026-03-09 08:00 CET" in shown  # cron's 1 is a Monday


def test_an_edition_made_before_a_crash_is_not_called_missed(
    publisher: Publisher,
    smtp_server: tuple[RecordingHandler, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, _ = smtp_server
    yesterday = NOW - timedelta(days=1)
    publisher.store.record_run(
        "daily", slot=yesterday, outcome=RunOutcome.EMPTY, edition_id=None, detail="",
        owner="test", now=yesterday,
    )  # fmt: skip
    stopped = Watch()
    stopped.stop.set()  # made and queued, then stopped before a single claim
    publisher.send("daily", now=bp(2026, 3, 2, 7, 1), watch=stopped)
    assert not handler.messages
    with caplog.at_level(logging.WARNING, logger="digest.service.scheduler"):
        Runner(publisher, clock=Clock(bp(2026, 3, 2, 14))).sweep()
    assert "missed edition" not in caplog.text
    last = publisher.store.last_run("daily")
    assert last is not None and last.outcome == RunOutcome.RAN
    assert_each_copy_went_once(publisher, "daily", handler)  # the sweep delivered the rest


def test_a_deferred_copy_of_yesterdays_edition_goes_out_the_next_day(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _ = smtp_server
    reader = publisher.store.active_subscribers("daily")[0].email
    handler.refuse[reader] = "451 4.3.0 Try again later"
    runner = Runner(publisher, clock=Clock(bp(2026, 3, 2, 7, 0, 30)))
    runner.sweep()
    assert not handler.for_address(reader)
    handler.refuse.clear()
    runner.clock = Clock(bp(2026, 3, 3, 5))  # the next day, before that day's own edition
    runner.sweep()
    assert len(handler.for_address(reader)) == 1
    assert_each_copy_went_once(publisher, "daily", handler)
    edition = publisher.store.latest_edition("daily")
    assert edition is not None and edition.status == EditionStatus.DONE


ZONES = ["Europe/Budapest", "Europe/London", "America/New_York", "Asia/Tokyo", ""]


def test_each_subscriber_gets_it_at_seven_on_their_own_clock(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], database_url: str
) -> None:
    handler, port = smtp_server
    base = settings_for(tmp_path, port, database_url=database_url)
    Publisher(base).init(seed=True, now=NOW)
    daily = base.list("daily").model_copy(
        update={"schedule": "0 6 * * *", "deliver_at": time(7), "per_subscriber_timezone": True}
    )
    publisher = Publisher(base.model_copy(update={"lists": (daily,)}))
    people = publisher.store.active_subscribers("daily")
    zone_of = {who.email: ZONES[n % len(ZONES)] for n, who in enumerate(people)}
    with publisher.store.engine.begin() as tx:  # "" included: a subscriber without a zone
        for who in people:
            tx.execute(
                update(subscribers)
                .where(subscribers.c.id == who.id)
                .values(timezone=zone_of[who.email])
            )
    clock = Clock(datetime(2026, 3, 2, 5, 0, 30, tzinfo=UTC))  # 06:00:30 in Budapest
    runner = Runner(publisher, clock=clock)
    runner.check_list("daily")
    assert publisher.store.latest_edition("daily") is not None
    steps = [
        (datetime(2026, 3, 2, 5, 59, tzinfo=UTC), set()),
        (datetime(2026, 3, 2, 6, 0, 30, tzinfo=UTC), {"Europe/Budapest", ""}),
        (datetime(2026, 3, 2, 6, 59, tzinfo=UTC), {"Europe/Budapest", ""}),
        (datetime(2026, 3, 2, 7, 0, 30, tzinfo=UTC), {"Europe/Budapest", "", "Europe/London"}),
        (datetime(2026, 3, 2, 11, 59, tzinfo=UTC), {"Europe/Budapest", "", "Europe/London"}),
        (datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC), set(ZONES) - {"Asia/Tokyo"}),
        (datetime(2026, 3, 2, 21, 59, tzinfo=UTC), set(ZONES) - {"Asia/Tokyo"}),
        (datetime(2026, 3, 2, 22, 0, 30, tzinfo=UTC), set(ZONES)),  # 07:00:30 on 3 March
    ]
    for moment, zones in steps:
        clock.now = moment
        runner.sweep()
        got = {r for m in handler.messages for r in m.recipients}
        assert got == {e for e, z in zone_of.items() if z in zones}, moment
    assert_each_copy_went_once(publisher, "daily", handler)


def _in_threads(*jobs: Callable[[], Any]) -> None:
    """Run the jobs at once, each on its own thread; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def start(job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures


@pytest.mark.parametrize("rounds", [1, 3], ids=["once", "three-sweeps-each"])
def test_two_schedulers_on_one_database_send_each_edition_once(
    settings: Settings, smtp_server: tuple[RecordingHandler, int], rounds: int
) -> None:
    handler, _ = smtp_server
    Publisher(settings).init(seed=True, now=NOW)
    clock = Clock(bp(2026, 3, 2, 8, 0, 30))  # the daily (07:00) and the weekly (08:00) are due
    runners = [Runner(Publisher(settings), clock=clock) for _ in range(2)]

    def sweeps(runner: Runner) -> Callable[[], None]:
        return lambda: [runner.sweep() for _ in range(rounds)]

    _in_threads(*(sweeps(runner) for runner in runners))
    store = runners[0].publisher.store
    for slug in ("daily", "weekly"):
        assert_each_copy_went_once(runners[0].publisher, slug, handler)
        assert len(store.recent_runs(list_slug=slug)) == 1
    assert len(handler.messages) == len(set(message_ids(handler)))


def test_two_senders_claiming_at_once_never_share_a_delivery(publisher: Publisher) -> None:
    stopped = Watch()
    stopped.stop.set()
    made = publisher.send("daily", now=NOW, watch=stopped).edition  # stored and queued, none sent
    assert made is not None
    stores = [Publisher(publisher.settings).store for _ in range(2)]
    taken: list[list[int]] = [[], []]

    def claim_all(n: int) -> Callable[[], None]:
        def run() -> None:
            while claims := stores[n].claim(
                made, owner=f"sender-{n}", limit=2, lease=timedelta(minutes=10), now=NOW
            ):
                taken[n].extend(claim.subscriber.id for claim in claims)

        return run

    _in_threads(claim_all(0), claim_all(1))
    assert not set(taken[0]) & set(taken[1])
    assert len(taken[0]) + len(taken[1]) == len(publisher.store.deliveries(made.id))


def test_the_cron_job_fires_through_apscheduler(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _ = smtp_server
    runner = Runner(publisher, clock=Clock(bp(2026, 3, 2, 7, 0, 30)))
    scheduler = build_scheduler(runner)
    fired = threading.Event()
    seen: list[tuple[str, BaseException | None]] = []

    def listen(event: JobExecutionEvent) -> None:
        seen.append((event.job_id, event.exception))
        fired.set()

    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"list:daily", "list:business", "list:weekly", "sweep"}
        daily = jobs["list:daily"]
        assert (daily.misfire_grace_time, daily.coalesce, daily.max_instances) == (21600, True, 1)
        assert "day_of_week='mon'" in str(jobs["list:weekly"].trigger)
        assert str(daily.trigger.timezone) == "Europe/Budapest"
        assert daily.next_run_time.astimezone(BUDAPEST).time() == time(7)
        scheduler.pause_job("sweep")  # it would run the list as well; let the cron job do it
        scheduler.modify_job("list:daily", next_run_time=datetime.now(UTC) + timedelta(seconds=1))
        scheduler.resume()
        assert fired.wait(timeout=30)
    finally:
        scheduler.shutdown(wait=True)
    assert seen == [("list:daily", None)]
    assert_each_copy_went_once(publisher, "daily", handler)


@pytest.fixture
def feed_url() -> Iterator[str]:
    """tests/fixtures/feeds/rss.xml over real HTTP."""
    serve = partial(
        SimpleHTTPRequestHandler,
        directory=str(Path(__file__).resolve().parents[1] / "fixtures" / "feeds"),
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), serve)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/rss.xml"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_the_feed_job_polls_each_configured_feed(publisher: Publisher, feed_url: str) -> None:
    feeds = publisher.settings.feeds.model_copy(
        update={"sources": (FeedSettings(name="bp-rss", url=feed_url),), "allow_private": True}
    )
    polling = Publisher(publisher.settings.model_copy(update={"feeds": feeds}))
    runner = Runner(polling, clock=Clock(NOW))
    assert "feeds" in {job.id for job in build_scheduler(runner).get_jobs()}
    before = len(polling.store.articles_published(after=NOW - timedelta(days=3650), until=NOW))
    runner.poll()
    after = polling.store.articles_published(after=NOW - timedelta(days=3650), until=NOW)
    assert len(after) > before and any(a.id.startswith("bp-rss") for a in after)
    assert polling.store.feed_validators(feed_url) != (None, None)  # the poll was recorded


def test_the_feed_job_gives_a_new_item_its_pages_og_image(publisher: Publisher) -> None:
    pages = Path(__file__).resolve().parents[1] / "fixtures" / "feeds" / "pages"
    with serving() as server:
        server.routes["/feed.json"] = Route(body=(pages / "feed.json").read_bytes())
        server.routes["/a/og"] = Route(
            body=(pages / "og.html").read_bytes(), headers={"Content-Type": "text/html"}
        )
        feeds = publisher.settings.feeds.model_copy(
            update={
                "sources": (FeedSettings(name="culture", url=server.url("/feed.json")),),
                "allow_private": True,
            }
        )
        polling = Publisher(publisher.settings.model_copy(update={"feeds": feeds}))
        Runner(polling, clock=Clock(NOW)).poll()
        assert sorted(server.paths()) == ["/a/og", "/feed.json"]  # the item with an image: none
    stored = polling.store.articles_published(after=NOW - timedelta(days=3650), until=NOW)
    (article,) = [a for a in stored if a.url == server.url("/a/og")]
    assert (article.image_url, article.image_alt) == (
        server.url("/img/og.jpg"),
        "The chamber at night",
    )


def test_a_stopped_runner_starts_nothing(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    stop = threading.Event()
    stop.set()
    runner = Runner(publisher, clock=Clock(bp(2026, 3, 2, 7, 0, 30)), stop=stop)
    runner.sweep()
    assert runner.check_list("daily") is None
    assert not smtp_server[0].messages and publisher.store.last_run("daily") is None


def test_json_log_lines_carry_time_level_logger_message_and_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("digest.test_json_lines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("missed edition: %s", "daily", extra={"list": "daily", "slot": NOW})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it broke")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "digest.test_json_lines"
    assert first["message"] == "missed edition: daily"
    assert (first["list"], first["slot"]) == ("daily", str(NOW))
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert "ValueError: boom" in second["traceback"]


def test_a_sweep_takes_back_the_claims_of_a_sender_that_died_here(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    """Killed after claiming the last queued rows: nothing is due, yet the next sweep sends them."""
    handler, _ = smtp_server
    result = publisher.send("daily", now=NOW, deliver=False)
    edition = result.edition
    assert edition is not None and result.queued
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process of this host that no longer exists
    held = publisher.store.claim(
        edition,
        owner=f"{socket.gethostname()}:{gone.pid}",
        limit=result.queued,
        lease=timedelta(hours=1),
        now=NOW,
    )
    assert len(held) == result.queued
    assert publisher.store.editions_due(now=NOW, since=NOW - timedelta(days=1)) == []
    Runner(publisher, clock=Clock(NOW)).deliver_due()
    assert publisher.store.delivery_counts(edition.id) == {DeliveryState.SENT: result.queued}
    assert len(handler.messages) == result.queued
