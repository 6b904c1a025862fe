"""The newsletters themselves, and how often `digest run` looks for one that is due."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from digest.config.checks import Section, address, safe_header_text, slug
from digest.config.subjects import check_subject
from digest.models import Approval, OnDeadline, Tracking


class ListSettings(Section):
    """One newsletter: what goes in, when, and from whom."""

    slug: str
    name: str
    description: str = ""
    sections: tuple[str, ...] = ()
    max_articles: int = Field(default=12, ge=1, le=200)
    # Stories after the lead shown as cards; the rest are headline-only "In brief" items.
    max_cards: int | None = Field(default=None, ge=1, le=200)
    lookback_hours: float = Field(default=24.0, gt=0)
    schedule: str = "0 7 * * *"
    timezone: str = "Europe/Budapest"
    subject: str = "{{ list_name }}, {{ date_label }}: {{ lead_title }}"
    from_name: str = "Budapest Post"
    from_address: str = "newsletter@budapestpost.example"
    reply_to: str | None = None
    send_when_empty: bool = False
    grace_hours: float = Field(default=6.0, gt=0, le=24 * 7)
    deliver_at: time | None = None
    per_subscriber_timezone: bool = False
    approval: Approval = Approval.AUTO
    approval_deadline: time | None = None
    on_deadline: OnDeadline = OnDeadline.SKIP
    # Articles about the same news share one card (digest.edition.stories) when their
    # similarity reaches story_threshold: lower merges more, higher keeps more apart.
    stories: bool = True
    story_threshold: float = Field(default=0.25, gt=0, le=1)
    # Article links go through /c/<token> and count: per edition and article ("aggregate"),
    # also per reader ("per_subscriber"), or not at all ("off": the URLs are left as they are).
    tracking: Tracking = Tracking.AGGREGATE
    # An open pixel in the HTML part; off by default (Apple Mail prefetches every image).
    opens: bool = False
    # Clicks this many seconds after the delivery count as machine (link scanners), not human.
    machine_window: float = Field(default=10.0, ge=0)

    @property
    def story_grouping(self) -> float | None:
        """The threshold selection groups stories at, or None when the list keeps them apart."""
        return self.story_threshold if self.stories else None

    @field_validator("subject")
    @classmethod
    def _subject_template(cls, value: str) -> str:
        return check_subject(value)

    @field_validator("deliver_at", "approval_deadline")
    @classmethod
    def _local_time(cls, value: time | None) -> time | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("give a local time such as 07:00; the zone comes from the list")
        return value

    @model_validator(mode="after")
    def _hold_needs_a_time(self) -> ListSettings:
        if self.per_subscriber_timezone and self.deliver_at is None:
            raise ValueError("per_subscriber_timezone needs deliver_at (such as 07:00)")
        return self

    @model_validator(mode="after")
    def _deadline_needs_approval(self) -> ListSettings:
        if self.approval_deadline is not None and self.approval is Approval.AUTO:
            raise ValueError('approval_deadline needs approval = "required"')
        return self

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        return slug(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a 5-field cron expression: {exc}") from exc
        return value

    @field_validator("from_address", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else address(value)

    @field_validator("name", "from_name", "description")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return safe_header_text(value)

    @property
    def zone(self) -> ZoneInfo:
        """The list's time zone, for edition dates and schedules."""
        return ZoneInfo(self.timezone)


class SchedulerSettings(Section):
    """`digest run`: how often it looks for due work, and how far back."""

    sweep_seconds: float = Field(default=60.0, gt=0)
    recent_hours: float = Field(default=48.0, gt=0)
