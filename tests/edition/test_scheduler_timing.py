"""`digest.edition.timing`: when a run is due, missed or not yet, and when each copy may go.

Pure functions, driven by explicit `now` values: no clock, no scheduler, no sleeping.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from digest.config import ListSettings
from digest.edition.timing import (
    cron_weekdays,
    decide,
    delivery_hold,
    list_trigger,
    next_slot,
    send_time,
    slots,
)
from digest.errors import ConfigError

BUDAPEST = ZoneInfo("Europe/Budapest")


def a_list(**changes: Any) -> ListSettings:
    return ListSettings(slug="daily", name="Daily", **changes)


def bp(*args: int) -> datetime:
    """A Budapest wall-clock time, as an aware datetime."""
    return datetime(*args, tzinfo=BUDAPEST)  # type: ignore[misc]


# -- missed runs, grace, coalescing ---------------------------------------------------------


class Case(NamedTuple):
    schedule: str
    grace: float
    last: datetime | None
    now: datetime
    run: datetime | None
    missed: tuple[datetime, ...] = ()


LATE = "30 23 * * *"
CASES = [
    Case("0 7 * * *", 6, bp(2026, 3, 1, 7), bp(2026, 3, 2, 7, 45), bp(2026, 3, 2, 7)),
    Case("0 7 * * *", 6, bp(2026, 3, 1, 7), bp(2026, 3, 2, 12, 59), bp(2026, 3, 2, 7)),
    Case("0 7 * * *", 6, bp(2026, 3, 1, 7), bp(2026, 3, 2, 13, 30), None, (bp(2026, 3, 2, 7),)),
    Case("0 7 * * *", 1, bp(2026, 3, 1, 7), bp(2026, 3, 2, 8, 30), None, (bp(2026, 3, 2, 7),)),
    Case("0 7 * * *", 6, bp(2026, 3, 2, 7), bp(2026, 3, 2, 7, 50), None),
    Case("0 7 * * *", 6, None, bp(2026, 3, 2, 9), bp(2026, 3, 2, 7)),
    Case("0 7 * * *", 6, None, bp(2026, 3, 2, 14), None),
    Case("0 7 * * *", 6, bp(2026, 3, 2, 7), bp(2026, 3, 5, 7, 30), bp(2026, 3, 5, 7),
         (bp(2026, 3, 3, 7), bp(2026, 3, 4, 7))),
    Case("0 * * * *", 6, bp(2026, 3, 2, 5), bp(2026, 3, 2, 7, 10), bp(2026, 3, 2, 7)),
    Case(LATE, 6, bp(2026, 3, 1, 23, 30), bp(2026, 3, 2, 23, 50), bp(2026, 3, 2, 23, 30)),
    Case(LATE, 6, bp(2026, 3, 1, 23, 30), bp(2026, 3, 3, 0, 15), None, (bp(2026, 3, 2, 23, 30),)),
    Case("0 8 * * 1", 6, bp(2026, 2, 23, 8), bp(2026, 3, 1, 8), None),
]  # fmt: skip
IDS = [
    "down-at-7-up-at-7:45-sends",
    "just-inside-the-grace-sends",
    "past-the-grace-is-missed",
    "a-shorter-grace",
    "already-ran-today-waits",
    "first-start-within-grace-sends",
    "first-start-past-grace-reports-nothing",
    "three-days-down-sends-today-reports-two",
    "hourly-slots-coalesce-into-one-run",
    "late-slot-same-day-sends",
    "late-slot-never-crosses-midnight",
    "weekly-not-yet-due",
]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_decide(case: Case) -> None:
    mailing_list = a_list(schedule=case.schedule, grace_hours=case.grace)
    decision = decide(mailing_list, last_slot=case.last, now=case.now)
    assert decision.run == case.run
    assert decision.missed == case.missed
    assert decision.next_slot is not None and decision.next_slot > case.now


def test_a_long_outage_reports_a_bounded_number_of_missed_slots() -> None:
    now = bp(2026, 3, 2, 7, 30)
    decision = decide(a_list(), last_slot=now - timedelta(days=60), now=now)
    assert decision.run == bp(2026, 3, 2, 7)
    assert len(decision.missed) == 31
    assert decision.missed[-1] == bp(2026, 3, 1, 7)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("0-6", "*"),
        ("*/2", "sun,tue,thu,sat"),
        ("1,3,SAT", "mon,wed,sat"),
    ],
    ids=["any", "one", "zero-sunday", "seven-sunday", "range", "names", "to-seven", "all",
         "step", "list"],
)  # fmt: skip
def test_crontab_weekdays_mean_what_cron_means(field: str, expected: str) -> None:
    assert cron_weekdays(field) == expected


def test_a_weekday_cron_cannot_read_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="schedule: 'mon#1' is not a crontab weekday"):
        list_trigger(a_list(schedule="0 7 * * mon#1"))


def test_the_monday_list_fires_on_mondays() -> None:
    fired = next_slot(a_list(schedule="0 8 * * 1"), bp(2026, 3, 1, 12))  # a Sunday
    assert fired is not None and fired.astimezone(BUDAPEST) == bp(2026, 3, 2, 8)


# -- daylight-saving time -------------------------------------------------------------------

DST = [
    ("0 7 * * *", date(2026, 3, 27), date(2026, 4, 1)),
    ("0 7 * * *", date(2026, 10, 23), date(2026, 10, 28)),
    ("30 2 * * *", date(2026, 3, 27), date(2026, 4, 1)),
    ("30 2 * * *", date(2026, 10, 23), date(2026, 10, 28)),
]
DST_IDS = ["07:00-spring", "07:00-autumn", "02:30-spring-gap", "02:30-autumn-repeat"]


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.mark.parametrize(("schedule", "first", "last"), DST, ids=DST_IDS)
def test_a_clock_stepping_across_a_dst_change_runs_once_per_local_day(
    schedule: str, first: date, last: date
) -> None:
    mailing_list = a_list(schedule=schedule)
    step = timedelta(minutes=10)
    now = datetime.combine(first, time(0), tzinfo=BUDAPEST).astimezone(UTC)
    end = datetime.combine(last, time(23, 59), tzinfo=BUDAPEST).astimezone(UTC)
    last_slot: datetime | None = None
    runs: list[tuple[datetime, datetime]] = []
    while now <= end:
        decision = decide(mailing_list, last_slot=last_slot, now=now)
        assert decision.missed == ()
        if decision.run is not None:
            runs.append((decision.run, now))
            last_slot = decision.run  # what the store would record
        now += step
    local_days = [slot.astimezone(BUDAPEST).date() for slot, _ in runs]
    assert local_days == _days(first, last)  # one run a local day, none doubled or lost
    for slot, ran_at in runs:
        assert timedelta(0) <= ran_at - slot < step  # run as soon as the clock passed it
    if schedule == "0 7 * * *":
        assert {slot.astimezone(BUDAPEST).time() for slot, _ in runs} == {time(7)}
        offsets = {slot.astimezone(BUDAPEST).utcoffset() for slot, _ in runs}
        assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # both sides of the change


@pytest.mark.parametrize(
    ("start", "expected_utc"),
    [
        (bp(2026, 3, 28, 12), ["2026-03-29T05:00", "2026-03-30T05:00"]),
        (bp(2026, 3, 27, 12), ["2026-03-28T06:00", "2026-03-29T05:00"]),
        (bp(2026, 10, 24, 12), ["2026-10-25T06:00", "2026-10-26T06:00"]),
    ],
    ids=["spring-forward", "day-before-spring", "fall-back"],
)
def test_apscheduler_fire_times_stay_at_seven_local(
    start: datetime, expected_utc: list[str]
) -> None:
    trigger = list_trigger(a_list(schedule="0 7 * * *"))
    first = trigger.get_next_fire_time(None, start)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    fired = [first, second]
    assert [f.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for f in fired] == expected_utc
    assert [f.astimezone(BUDAPEST).hour for f in fired] == [7, 7]


def test_the_repeated_autumn_hour_fires_once() -> None:
    night = list(
        slots(
            a_list(schedule="30 2 * * *"),
            after=bp(2026, 10, 25, 0),
            until=bp(2026, 10, 25, 12),
        )
    )
    assert night == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # 02:30 CEST, not again at CET


def test_next_slot() -> None:
    weekly = a_list(schedule="0 8 * * 1")
    assert next_slot(weekly, bp(2026, 3, 2, 8)) == bp(2026, 3, 9, 8)
    assert next_slot(a_list(schedule="0 0 30 2 *"), bp(2026, 3, 2, 8)) is None


# -- per-subscriber send times --------------------------------------------------------------

BUILT = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 06:00 in Budapest


@pytest.mark.parametrize(
    ("subscriber_zone", "per_subscriber", "expected"),
    [
        ("Europe/Budapest", True, datetime(2026, 3, 2, 6, 0, tzinfo=UTC)),
        ("Europe/London", True, datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("America/New_York", True, datetime(2026, 3, 2, 12, 0, tzinfo=UTC)),
        ("Asia/Tokyo", True, datetime(2026, 3, 2, 22, 0, tzinfo=UTC)),
        ("", True, datetime(2026, 3, 2, 6, 0, tzinfo=UTC)),
        ("Mars/Olympus_Mons", True, datetime(2026, 3, 2, 6, 0, tzinfo=UTC)),
        ("America/New_York", False, datetime(2026, 3, 2, 6, 0, tzinfo=UTC)),
    ],
    ids=[
        "budapest",
        "london",
        "new-york",
        "tokyo-next-morning",
        "no-zone-uses-the-lists",
        "unknown-zone-uses-the-lists",
        "list-zone-for-everyone",
    ],
)
def test_delivery_hold(subscriber_zone: str, per_subscriber: bool, expected: datetime) -> None:
    mailing_list = a_list(deliver_at=time(7), per_subscriber_timezone=per_subscriber)
    hold = delivery_hold(mailing_list, built=BUILT)
    assert hold is not None
    assert hold(subscriber_zone) == expected


def test_no_deliver_at_means_no_hold() -> None:
    assert delivery_hold(a_list(), built=BUILT) is None


@pytest.mark.parametrize(
    ("after", "zone", "expected"),
    [
        (datetime(2026, 3, 28, 8, 0, tzinfo=UTC), "Europe/London", "2026-03-29T06:00"),
        (datetime(2026, 10, 24, 8, 0, tzinfo=UTC), "Europe/London", "2026-10-25T07:00"),
        (datetime(2026, 3, 29, 0, 0, tzinfo=UTC), "Europe/Budapest", "2026-03-29T05:00"),
        (datetime(2026, 3, 2, 6, 0, tzinfo=UTC), "Europe/Budapest", "2026-03-02T06:00"),
    ],
    ids=["london-spring", "london-autumn", "budapest-spring", "exactly-at-the-time"],
)
def test_send_time_follows_local_clocks(after: datetime, zone: str, expected: str) -> None:
    moment = send_time(time(7), ZoneInfo(zone), after=after)
    assert moment.strftime("%Y-%m-%dT%H:%M") == expected
    assert moment.astimezone(ZoneInfo(zone)).time() == time(7)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"per_subscriber_timezone": True}, "needs deliver_at"),
        ({"deliver_at": "25:00"}, "deliver_at"),
        ({"deliver_at": "07:00+01:00"}, "local time"),
        ({"grace_hours": 0}, "grace_hours"),
    ],
    ids=["per-subscriber-without-time", "bad-time", "time-with-zone", "no-grace"],
)
def test_bad_schedule_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        a_list(**changes)


def test_deliver_at_is_read_as_a_local_time() -> None:
    assert a_list(deliver_at="07:00").deliver_at == time(7)
