"""Approval against a real SMTP server and a real database, driven through the scheduler's
Runner with a made-up clock: a list with approval = "required" is made on schedule and sends
nothing until approved, and its deadline sends or skips."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from rich.console import Console

from digest.cli.run import show_schedule
from digest.config import ListSettings, Settings
from digest.errors import InvalidInputError, NotFoundError
from digest.models import Approval, Edition, OnDeadline, RunOutcome, Verdict
from digest.operations.approval import ApprovalState, approval_view, approve
from digest.operations.editions import Variants
from digest.operations.publisher import Publisher
from digest.service.scheduler import Runner
from tests.conftest import RecordingHandler

BUDAPEST = ZoneInfo("Europe/Budapest")
EDITOR = "editor@budapestpost.example"


def bp(*args: int) -> datetime:
    return datetime(*args, tzinfo=BUDAPEST)  # type: ignore[misc]


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def requiring(settings: Settings, **changes: Any) -> Settings:
    """The settings with the daily list waiting for approval."""
    lists = tuple(
        item.model_copy(update={"approval": Approval.REQUIRED, **changes})
        if item.slug == "daily"
        else item
        for item in settings.lists
    )
    return settings.model_copy(update={"lists": lists})


def daily_mail(handler: RecordingHandler) -> list[Any]:
    return [m.message for m in handler.messages if "<daily." in str(m.message["List-Id"])]


def readers_subjects(publisher: Publisher, edition: Edition) -> set[str]:
    """The subjects the edition's readers get: each in the reader's language."""
    variants = Variants(
        publisher.settings.site,
        publisher.settings.list(edition.list_slug),
        publisher.store,
        publisher.renderer,
        edition,
    )
    readers = publisher.store.active_subscribers(edition.list_slug)
    return {
        chosen.subject
        for reader in readers
        if (chosen := variants.variant(None, reader.locale)) is not None
    }


def test_a_list_that_needs_approval_is_made_on_schedule_and_sent_only_once_approved(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, _ = smtp_server
    held = Publisher(requiring(publisher.settings))
    clock = Clock(bp(2026, 3, 2, 7, 0, 30))
    runner = Runner(held, clock=clock)
    runner.sweep()
    edition = held.store.latest_edition("daily")
    assert edition is not None and edition.article_ids  # made at 07:00, with the day's stories
    last = held.store.last_run("daily")
    assert last is not None and last.outcome == RunOutcome.RAN
    assert last.detail == "waiting for approval"
    assert held.store.deliveries(edition.id) == [] and daily_mail(handler) == []
    assert approval_view(held.store, held.settings.list("daily"), now=clock.now).state is (
        ApprovalState.WAITING
    )
    clock.now = bp(2026, 3, 2, 10)
    runner.sweep()  # no deadline: it waits however long
    assert daily_mail(handler) == []

    approve(held, "daily", editor=EDITOR, now=clock.now)
    runner.deliver_due()
    mail = daily_mail(handler)
    active = held.store.active_subscribers("daily")
    assert len(mail) == len(active) > 0
    lead = held.store.articles_by_id(edition.article_ids)[0]
    assert {str(message["Subject"]) for message in mail} == readers_subjects(held, edition)
    for message in mail:
        text = message.get_body(("plain",))
        assert text is not None and lead.title in text.get_content()
    view = approval_view(held.store, held.settings.list("daily"), now=clock.now)
    assert view.state is ApprovalState.SENT and view.verdict is not None
    assert view.verdict.decided_by == EDITOR and view.verdict.verdict is Verdict.APPROVED
    with pytest.raises(NotFoundError, match="no edition of daily is waiting"):
        approve(held, "daily", editor=EDITOR, now=clock.now)


def test_approving_a_list_that_sends_by_itself_is_refused(publisher: Publisher) -> None:
    with pytest.raises(InvalidInputError, match="sends without approval"):
        approve(publisher, "daily", editor=EDITOR, now=bp(2026, 3, 2, 7, 5))


def test_nothing_waits_before_the_scheduled_run(publisher: Publisher) -> None:
    held = Publisher(requiring(publisher.settings))
    with pytest.raises(NotFoundError, match="the scheduled run makes the next one"):
        approve(held, "daily", editor=EDITOR, now=bp(2026, 3, 2, 6, 30))
    view = approval_view(held.store, held.settings.list("daily"), now=bp(2026, 3, 2, 6, 30))
    assert view.state is ApprovalState.NOT_MADE


@pytest.mark.parametrize("policy", [OnDeadline.SEND, OnDeadline.SKIP], ids=["send", "skip"])
def test_the_deadline_sends_anyway_or_skips_and_records_a_missed_edition(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int], policy: OnDeadline
) -> None:
    handler, _ = smtp_server
    held = Publisher(
        requiring(publisher.settings, approval_deadline=time(9, 0), on_deadline=policy)
    )
    clock = Clock(bp(2026, 3, 2, 7, 0, 30))
    runner = Runner(held, clock=clock)
    runner.sweep()
    edition = held.store.latest_edition("daily")
    assert edition is not None
    clock.now = bp(2026, 3, 2, 8, 59, 59)
    runner.sweep()
    assert daily_mail(handler) == [] and held.store.verdict_for(edition.id) is None
    clock.now = bp(2026, 3, 2, 9, 0, 30)
    runner.sweep()
    verdict = held.store.verdict_for(edition.id)
    assert verdict is not None and verdict.decided_by == "deadline"
    status = io.StringIO()
    show_schedule(Console(file=status, width=100), held.settings.lists, held.store, now=clock.now)
    assert "approval: required, deadline 09:00, then " + str(policy) in status.getvalue()
    missed = f"daily: edition #{edition.id} of 2026-03-02, skipped 2026-03-02 09:00 CET"
    if policy is OnDeadline.SEND:
        assert verdict.verdict is Verdict.DEADLINE_SENT
        assert len(daily_mail(handler)) == len(held.store.active_subscribers("daily"))
        assert missed not in status.getvalue()
    else:
        assert verdict.verdict is Verdict.SKIPPED
        assert daily_mail(handler) == [] and held.store.deliveries(edition.id) == []
        assert "not approved by the deadline" in status.getvalue()
        assert missed in status.getvalue()
        with pytest.raises(NotFoundError):
            approve(held, "daily", editor=EDITOR, now=clock.now)
        clock.now = bp(2026, 3, 2, 11)
        runner.sweep()  # a skipped edition stays unsent
        assert daily_mail(handler) == []


def test_an_approval_and_the_deadline_leave_one_verdict(publisher: Publisher) -> None:
    held = Publisher(
        requiring(publisher.settings, approval_deadline=time(9, 0), on_deadline=OnDeadline.SKIP)
    )
    runner = Runner(held, clock=Clock(bp(2026, 3, 2, 7, 0, 30)))
    runner.check_list("daily")
    edition = held.store.latest_edition("daily")
    assert edition is not None
    approve(held, "daily", editor=EDITOR, now=bp(2026, 3, 2, 8, 59))
    assert not held.store.record_verdict(
        edition.id, Verdict.SKIPPED, decided_by="deadline", now=bp(2026, 3, 2, 9)
    )
    verdict = held.store.verdict_for(edition.id)
    assert verdict is not None and verdict.verdict is Verdict.APPROVED


def test_a_deadline_without_required_approval_is_a_config_error(publisher: Publisher) -> None:
    daily = publisher.settings.list("daily").model_dump()
    with pytest.raises(ValidationError, match='approval_deadline needs approval = "required"'):
        ListSettings(**{**daily, "approval_deadline": "09:00"})
    held = ListSettings(**{**daily, "approval": "required", "approval_deadline": "09:00"})
    assert held.approval_deadline == time(9, 0) and held.on_deadline is OnDeadline.SKIP
