"""`digest run`: the always-on service. APScheduler says when, `digest.edition.timing` says
what, `Publisher` does the work.

    list:<slug>  cron, in the list's zone: check the list (run its slot, or record it missed)
    sweep        at start and every [scheduler] sweep_seconds: check every list (the catch-up
                 after a restart), decide editions whose approval deadline passed, then
                 deliver what came due in recent editions: copies held for a subscriber's
                 local time, approved editions, retries, claims of a sender that died
    feeds        at start and every [feeds] poll_minutes, when feeds are configured

The last slot handled per list lives in the database (`schedule_runs`), not in an APScheduler
job store: a job store remembers only the next fire time, so after a restart it cannot tell
"missed by 10 minutes, send" from "missed by a day, report", and it is per process, where the
table is shared by every `digest run` on the database. APScheduler's own misfire handling is
kept in line with it (grace, coalescing, one instance), but the decision is `timing.decide`'s.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import ListSettings
from digest.edition.timing import Decision, decide, list_trigger, next_slot
from digest.errors import DigestError, StoreError
from digest.models import Edition, RunOutcome, Verdict
from digest.operations.approval import settle_deadlines
from digest.operations.delivery import DeliveryReport, Watch
from digest.operations.editions import edition_date
from digest.operations.ingest import poll_feeds
from digest.operations.ledger import owner_name, reclaim_recent_from_the_dead
from digest.operations.publisher import Publisher
from digest.store import Leadership

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _local(moment: datetime, mailing_list: ListSettings) -> str:
    return moment.astimezone(mailing_list.zone).strftime("%Y-%m-%d %H:%M %Z")


def _tally(report: DeliveryReport) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(report.counts.items())) or "none due"


class Runner:
    """What the jobs do, each call reading the clock as it starts: tests drive it with a
    made-up clock and no APScheduler at all. Setting `stop` ends claiming everywhere."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime] = _utc_now,
        stop: threading.Event | None = None,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        self.publisher = publisher
        self.clock = clock
        self.leads = leads
        self.watch = Watch(stop=stop or threading.Event())
        self.owner = owner_name()
        # One run or sweep per list at a time in this process. Other processes are kept apart
        # by the edition's unique key and the ledger's claims, not by this.
        self._busy = {item.slug: threading.Lock() for item in publisher.settings.lists}
        # What this process delivered, by (edition, list), and the last error a delivery met,
        # for `digest worker` to report.
        self.delivered: dict[tuple[int, str], Counter[str]] = {}
        self.delivered_total = 0
        self.setback: DigestError | None = None

    @property
    def stopping(self) -> bool:
        """True once SIGTERM or SIGINT asked the service to stop."""
        return self.watch.stop.is_set()

    def check_ready(self) -> None:
        """Fail at start, not at the first 07:00, if `digest init` has not been run."""
        for item in self.publisher.settings.lists:
            try:
                self.publisher.store.last_run(item.slug)
            except StoreError as exc:
                raise StoreError(
                    f"the database is not ready for `digest run`; run `digest init` ({exc})"
                ) from exc

    def check_list(self, slug: str) -> Decision | None:
        """Run the list's due slot and record missed ones; None when stopping or busy here."""
        mailing_list = self.publisher.settings.list(slug)
        busy = self._busy[slug]
        if self.stopping or not self.leads() or not busy.acquire(blocking=False):
            return None
        try:
            now = self.clock()
            last = self.publisher.store.last_run(slug)
            decision = decide(mailing_list, last_slot=last.slot if last else None, now=now)
            for slot in decision.missed:
                self._missed(mailing_list, slot)
            if decision.run is not None:
                self._run(mailing_list, decision.run)
            return decision
        finally:
            busy.release()

    def sweep(self) -> None:
        """Check every list (so a restart catches up), then deliver what has come due."""
        for item in self.publisher.settings.lists:
            try:
                self.check_list(item.slug)
            except DigestError as exc:  # one list's trouble (a locked database) spares the rest
                log.error("list %s: %s", item.slug, exc, extra={"list": item.slug})
        if self.leads() and not self.stopping:
            self.settle_deadlines()
        self.deliver_due()

    def settle_deadlines(self) -> None:
        """Send or skip the editions still unapproved at their list's deadline."""
        for done in settle_deadlines(self.publisher, now=self.clock()):
            edition = done.edition
            fields = {"list": edition.list_slug, "edition": edition.id}
            if done.verdict is Verdict.SKIPPED:
                log.warning(
                    "missed edition: #%d of %s was not approved by %s; not sent",
                    edition.id,
                    edition.list_slug,
                    _local(done.deadline, self.publisher.settings.list(edition.list_slug)),
                    extra=fields | {"event": "missed"},
                )
            else:
                log.info(
                    "edition #%d of %s: not approved by its deadline; sending anyway",
                    edition.id,
                    edition.list_slug,
                    extra=fields,
                )

    def deliver_due(self) -> int:
        """Deliver what has come due in recent editions; returns how many editions had some."""
        now = self.clock()
        since = now - timedelta(hours=self.publisher.settings.scheduler.recent_hours)
        reclaim_recent_from_the_dead(self.publisher.store, since=since, now=now)
        due = self.publisher.store.editions_due(now=now, since=since)
        for edition in due:
            busy = self._busy.get(edition.list_slug)  # None: a list no longer configured
            if busy is None or self.stopping or not busy.acquire(blocking=False):
                continue
            try:
                self._deliver(edition)
            finally:
                busy.release()
        return len(due)

    def poll(self) -> None:
        """Poll every configured feed once, one at a time so that a stop is not kept waiting."""
        feeds = self.publisher.settings.feeds
        for source in feeds.sources:
            if self.stopping:
                return
            one = feeds.model_copy(update={"sources": (source,)})
            (report,) = poll_feeds(one, self.publisher.store, now=self.clock())
            log.info(
                "feed %s: %s, %d new, %d revised, %d updated",
                report.feed,
                report.status,
                report.new,
                report.revised,
                report.updated,
                extra={"feed": report.feed, "status": str(report.status)},
            )

    def _deliver(self, edition: Edition) -> None:
        try:
            report = self.publisher.deliver(edition, now=self.clock(), watch=self.watch)
        except DigestError as exc:
            self.setback = exc
            log.warning(
                "edition #%d of %s: %s; the next sweep tries again",
                edition.id,
                edition.list_slug,
                exc,
                extra={"list": edition.list_slug, "edition": edition.id},
            )
            return
        self.delivered.setdefault((edition.id, edition.list_slug), Counter()).update(report.counts)
        self.delivered_total += sum(report.counts.values())
        log.info(
            "edition #%d of %s: %s",
            edition.id,
            edition.list_slug,
            _tally(report),
            extra={"list": edition.list_slug, "edition": edition.id, "counts": report.counts},
        )

    def _run(self, mailing_list: ListSettings, slot: datetime) -> None:
        slug = mailing_list.slug
        fields: dict[str, object] = {"list": slug, "slot": slot.isoformat()}
        now = self.clock()
        try:
            result = self.publisher.send(slug, now=now, watch=self.watch)
        except DigestError as exc:
            made = self.publisher.store.edition_for(slug, edition_date(mailing_list, now))
            self._record(mailing_list, slot, RunOutcome.FAILED, made, str(exc))
            log.error(
                "list %s: the run due at %s failed: %s",
                slug,
                _local(slot, mailing_list),
                exc,
                extra=fields | {"edition": made.id if made else None},
            )
            return
        if result.nothing_new:
            self._record(mailing_list, slot, RunOutcome.EMPTY, None, "nothing new")
            log.info(
                "list %s: nothing new since the last edition; no email sent", slug, extra=fields
            )
            return
        edition = result.edition
        assert edition is not None  # not dry run, not nothing new: Publisher.send stored one
        if result.waiting or result.skipped:
            detail = "waiting for approval" if result.waiting else "skipped at the deadline"
            self._record(mailing_list, slot, RunOutcome.RAN, edition, detail)
            log.info(
                "list %s: edition #%d of %s %s",
                slug,
                edition.id,
                edition.edition_date,
                detail,
                extra=fields | {"edition": edition.id},
            )
            return
        stopped = "stopped on request; the rest stays queued" if result.report.stopped else ""
        self._record(mailing_list, slot, RunOutcome.RAN, edition, stopped)
        log.info(
            "list %s: %s #%d of %s: %s%s",
            slug,
            "new edition" if result.created else "edition",
            edition.id,
            edition.edition_date,
            _tally(result.report),
            f" ({stopped})" if stopped else "",
            extra=fields | {"edition": edition.id, "counts": result.report.counts},
        )

    def _missed(self, mailing_list: ListSettings, slot: datetime) -> None:
        slug = mailing_list.slug
        # An edition of the slot's date was made after all: by this process before a crash,
        # by another `digest run`, or by hand. Its rest goes out with the sweep.
        made = self.publisher.store.edition_for(slug, slot.astimezone(mailing_list.zone).date())
        if made is not None:
            self._record(mailing_list, slot, RunOutcome.RAN, made, "edition found afterwards")
            return
        grace = f"{mailing_list.grace_hours:g} h"
        if self._record(mailing_list, slot, RunOutcome.MISSED, None, f"not run within {grace}"):
            log.warning(
                "missed edition: list %s was due at %s but not run within its %s grace; not sent",
                slug,
                _local(slot, mailing_list),
                grace,
                extra={"list": slug, "slot": slot.isoformat(), "event": "missed"},
            )

    def _record(
        self,
        mailing_list: ListSettings,
        slot: datetime,
        outcome: RunOutcome,
        edition: Edition | None,
        detail: str,
    ) -> bool:
        return self.publisher.store.record_run(
            mailing_list.slug,
            slot=slot,
            outcome=outcome,
            edition_id=edition.id if edition else None,
            detail=detail,
            owner=self.owner,
            now=self.clock(),
        )


def build_scheduler(runner: Runner) -> BackgroundScheduler:
    """The jobs of `digest run` on a scheduler not yet started."""
    settings = runner.publisher.settings
    start = datetime.now(UTC)
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=len(settings.lists) + 2)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    for item in settings.lists:
        scheduler.add_job(
            runner.check_list,
            list_trigger(item),
            args=(item.slug,),
            id=f"list:{item.slug}",
            name=f"list {item.slug}",
            # APScheduler would drop a fire one second late; the list says how late is too late.
            misfire_grace_time=max(1, round(item.grace_hours * 3600)),
        )
    scheduler.add_job(
        runner.sweep,
        IntervalTrigger(seconds=settings.scheduler.sweep_seconds, timezone=UTC),
        id="sweep",
        name="sweep",
        next_run_time=start,
        misfire_grace_time=None,
    )
    if settings.feeds.sources:
        scheduler.add_job(
            runner.poll,
            IntervalTrigger(minutes=settings.feeds.poll_minutes, timezone=UTC),
            id="feeds",
            name="feeds",
            next_run_time=start,
            misfire_grace_time=None,
        )
    return scheduler


def serve(publisher: Publisher, *, stop: threading.Event) -> None:
    """Run the jobs until `stop` is set, then let what is in flight finish, and return.

    On PostgreSQL one `digest run` leads (makes editions) and the others stand by, delivering
    only, until the leader goes away.
    """
    leadership = Leadership(publisher.store.engine)
    runner = Runner(publisher, stop=stop, leads=leadership.leads)
    runner.check_ready()
    if not leadership.leads():
        log.info("another digest run leads the schedule; standing by")
    scheduler = build_scheduler(runner)
    scheduler.start()
    try:
        now = _utc_now()
        for item in publisher.settings.lists:
            upcoming = next_slot(item, now)
            log.info(
                "list %s: %s (%s), next run %s",
                item.slug,
                item.schedule,
                item.timezone,
                _local(upcoming, item) if upcoming else "never",
                extra={"list": item.slug, "next_run": upcoming.isoformat() if upcoming else None},
            )
        stop.wait()
        log.info("stopping: no new claims; messages in flight finish and are recorded")
    finally:
        stop.set()
        scheduler.shutdown(wait=True)
        leadership.release()
    log.info("stopped")


@dataclass(slots=True)
class WorkReport:
    """What `digest worker` did: ledger states counted by (edition, list), and, when it
    gave up on `--until-idle` because a sweep got nowhere, the error that stopped it."""

    delivered: dict[tuple[int, str], Counter[str]]
    gave_up: DigestError | None = None


def work(
    publisher: Publisher, *, stop: threading.Event, poll_seconds: float, until_idle: bool = False
) -> WorkReport:
    """`digest worker`: deliver due rows of recent editions until `stop` (or, with
    `until_idle`, until nothing is due). Makes no editions.

    With `until_idle` a sweep that meets an error and delivers nothing ends the run too: a
    batch job with the relay down must exit and say so, not retry forever.
    """
    runner = Runner(publisher, stop=stop, leads=lambda: False)
    runner.check_ready()
    while not stop.is_set():
        before = runner.delivered_total
        runner.setback = None
        try:
            due = runner.deliver_due()
        except DigestError as exc:  # a relay or database hiccup: try again next round
            log.error("worker: %s", exc)
            runner.setback, due = exc, 1
        if until_idle and not due:
            break
        if until_idle and runner.setback is not None and runner.delivered_total == before:
            return WorkReport(runner.delivered, gave_up=runner.setback)
        stop.wait(poll_seconds)
    return WorkReport(runner.delivered)
