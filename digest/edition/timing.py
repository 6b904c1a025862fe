"""When a list's run is due, and when each subscriber's copy may go: pure functions of `now`.

The scheduler asks `decide` at each cron fire, each sweep and at start-up. The answer depends
only on the list's settings, the last slot the store recorded and `now`, so a restart, a second
process and a test with a made-up clock all get the same one. Instants are compared and
stepped in UTC: adding to a zoned datetime is wall-clock arithmetic, wrong across a change of
daylight-saving time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from digest.config import ListSettings
from digest.errors import ConfigError

# How far back an outage is searched for missed slots (a list that fires every minute walks at
# most 50,000, about a second, once after a long outage), and how many of them are reported.
_SCAN = timedelta(days=35)
_KEEP_MISSED = 31
_TICK = timedelta(microseconds=1)
# A schedule that cannot fire within this long (a 30 February) has no next run.
_HORIZON = timedelta(days=5 * 366)
_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do for one list at `now`; all instants in UTC.

    `run`: the slot to run now, if one is due and within its grace (earlier slots still within
    theirs merge into it: coalescing). `missed`: slots whose grace ran out unrun, oldest first.
    `next_slot`: when to look again.
    """

    run: datetime | None
    missed: tuple[datetime, ...]
    next_slot: datetime | None


def _weekday(value: str) -> int:
    if value.lower() in _CRON_WEEKDAYS:
        return _CRON_WEEKDAYS.index(value.lower())
    if value.isdigit() and int(value) <= 7:
        return int(value)
    raise ValueError(f"{value!r} is not a crontab weekday (0-7 or sun-sat)")


def cron_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 is Sunday, names allowed) in APScheduler 3's words.

    APScheduler 3 counts 0 as Monday, even in `from_crontab` (a known mistake it keeps for
    compatibility): read as it stands, "0 8 * * 1" would send the Monday list on Tuesdays.
    Spelling the days out by name gives them one meaning.
    """
    days: set[int] = set()
    for item in field.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-", 1)
            first, last = _weekday(low), _weekday(high)
        else:
            first = _weekday(span)
            last = 6 if step else first
        days.update(day % 7 for day in range(first, last + 1, int(step or 1)))
    if len(days) == 7:
        return "*"
    return ",".join(_CRON_WEEKDAYS[day] for day in sorted(days))


def list_trigger(mailing_list: ListSettings) -> CronTrigger:
    """The list's `schedule` (standard crontab) as an APScheduler trigger in the list's zone."""
    minute, hour, day, month, weekday = mailing_list.schedule.split()
    try:
        days = cron_weekdays(weekday)
    except ValueError as exc:
        raise ConfigError(f"list {mailing_list.slug}: schedule: {exc}") from exc
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=mailing_list.zone
    )


def slots(mailing_list: ListSettings, *, after: datetime, until: datetime) -> Iterator[datetime]:
    """The list's scheduled instants in (after, until], in UTC.

    A wall-clock time that the autumn change repeats (02:30 twice in one night) counts once:
    cron fires at both, but readers expect one send, not two an hour apart.
    """
    trigger = list_trigger(mailing_list)
    zone = mailing_list.zone
    moment = after.astimezone(UTC)
    previous_wall = moment.astimezone(zone).replace(tzinfo=None)
    while True:
        fire = trigger.get_next_fire_time(None, moment + _TICK)
        if fire is None or fire.astimezone(UTC) > until:
            return
        moment = fire.astimezone(UTC)
        wall = moment.astimezone(zone).replace(tzinfo=None)
        if wall != previous_wall:
            yield moment
        previous_wall = wall


def next_slot(mailing_list: ListSettings, now: datetime) -> datetime | None:
    """The list's first scheduled instant after `now`, in UTC (None: the schedule never fires)."""
    return next(slots(mailing_list, after=now, until=now + _HORIZON), None)


def deadline(mailing_list: ListSettings, slot: datetime) -> datetime:
    """Until when a slot may still run: its grace period, and never past its own local date.

    Editions are one per list and local date, dated by when they are made: a 23:30 slot run
    at 00:15 would take the next day's edition, and that day's own run would find it sent.
    """
    zone = mailing_list.zone
    local_day = slot.astimezone(zone).date()
    midnight = datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=zone)
    return min(slot + timedelta(hours=mailing_list.grace_hours), midnight.astimezone(UTC))


def decide(mailing_list: ListSettings, *, last_slot: datetime | None, now: datetime) -> Decision:
    """Run now, report missed slots, or wait: given the last slot recorded for the list.

    With no record (a new list or database) only the grace period before `now` is looked at,
    so a first start at 07:45 still sends the 07:00 edition and nothing older is reported.
    """
    start = last_slot if last_slot is not None else now - timedelta(hours=mailing_list.grace_hours)
    start = max(start, now - _SCAN)
    pending = deque(slots(mailing_list, after=start, until=now), maxlen=_KEEP_MISSED + 1)
    latest = pending[-1] if pending else None
    run = latest if latest is not None and now < deadline(mailing_list, latest) else None
    missed = tuple(s for s in pending if s != run and now >= deadline(mailing_list, s))
    return Decision(run=run, missed=missed, next_slot=next_slot(mailing_list, now))


def send_time(deliver_at: time, zone: ZoneInfo, *, after: datetime) -> datetime:
    """The first `deliver_at` on the clocks of `zone` at or after `after`, in UTC.

    A time the spring change skips (02:30) is read with the offset before the change, which
    lands an hour later on the new clock (03:30).
    """
    local = after.astimezone(zone)
    today = datetime.combine(local.date(), deliver_at, tzinfo=zone).astimezone(UTC)
    if today >= after:
        return today
    tomorrow = datetime.combine(local.date() + timedelta(days=1), deliver_at, tzinfo=zone)
    return tomorrow.astimezone(UTC)


def approval_deadline_at(mailing_list: ListSettings, *, made: datetime) -> datetime | None:
    """When an edition made at `made` stops waiting for approval: the first
    `approval_deadline` on the list's clock after it was made, in UTC (None: it waits on)."""
    at = mailing_list.approval_deadline
    return None if at is None else send_time(at, mailing_list.zone, after=made)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def delivery_hold(
    mailing_list: ListSettings, *, built: datetime
) -> Callable[[str], datetime] | None:
    """When each copy of an edition made at `built` may go, by the subscriber's time zone.

    None when the list sets no `deliver_at`: every copy goes at once. Otherwise each copy waits
    for the first `deliver_at` after the edition was made, on the subscriber's clock when
    `per_subscriber_timezone` is on (a subscriber without a valid zone uses the list's), else
    on the list's.
    """
    at = mailing_list.deliver_at
    if at is None:
        return None

    def hold(subscriber_zone: str) -> datetime:
        zone = (
            _zone(subscriber_zone) if mailing_list.per_subscriber_timezone else None
        ) or mailing_list.zone
        return send_time(at, zone, after=built)

    return hold
