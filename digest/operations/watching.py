"""What the desk shows while an edition sends, and the three things an editor may do to it.

Pause, resume and retry change the stored state only; the sender (`digest run`, or the
`digest resume`/`digest retry` commands) does the sending, so a web request never holds an
SMTP session. A paused edition is skipped by the scheduler until it is resumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.errors import InvalidInputError
from digest.models import DeliveryState, EditionStatus
from digest.operations.ledger import OPEN_STATES
from digest.operations.status import shown_status
from digest.store import EditionTotals, Refusal, Store

RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class LiveView:
    """One edition's send as it stands: counts by ledger state, pace and refusals."""

    edition_id: int
    list_slug: str
    subject: str
    status: EditionStatus
    counts: dict[str, int]
    per_minute: int  # messages accepted over the last minute
    eta_seconds: int | None  # None while nothing is open or nothing moves
    refusals: tuple[Refusal, ...]

    @property
    def total(self) -> int:
        """Every delivery in the edition's ledger."""
        return sum(self.counts.values())

    @property
    def open(self) -> int:
        """Deliveries that may still go out."""
        return sum(self.counts.get(state, 0) for state in OPEN_STATES)

    def as_json(self) -> dict[str, object]:
        """The view for the live page's polling script."""
        return {
            "edition": self.edition_id,
            "status": str(self.status),
            "counts": {state.value: self.counts.get(state, 0) for state in DeliveryState},
            "total": self.total,
            "open": self.open,
            "per_minute": self.per_minute,
            "eta_seconds": self.eta_seconds,
            "refusals": [
                {"email": r.email, "state": r.state, "reply": r.reply, "at": r.at.isoformat()}
                for r in self.refusals
            ],
        }


def live_view(store: Store, edition_id: int, *, now: datetime) -> LiveView:
    """The edition's send at `now`; NotFoundError for an unknown edition."""
    edition = store.edition_by_id(edition_id)
    counts = store.delivery_counts(edition.id)
    per_minute = store.sent_between(edition.id, since=now - RATE_WINDOW, until=now + _SKEW)
    remaining = sum(counts.get(state, 0) for state in OPEN_STATES)
    eta = round(remaining * 60 / per_minute) if remaining and per_minute else None
    return LiveView(
        edition_id=edition.id,
        list_slug=edition.list_slug,
        subject=edition.subject,
        status=shown_status(edition.status, counts),
        counts=counts,
        per_minute=per_minute,
        eta_seconds=eta,
        refusals=tuple(store.recent_refusals(edition.id)),
    )


# A sender's clock may run a little ahead of the web process's: its latest rows still count.
_SKEW = timedelta(seconds=5)


def pause(store: Store, edition_id: int) -> None:
    """Stop the scheduler from sending the edition until it is resumed."""
    edition = store.edition_by_id(edition_id)
    if edition.status not in (EditionStatus.SENDING, EditionStatus.PAUSED):
        raise InvalidInputError(f"edition #{edition.id} is {edition.status}, not sending")
    store.set_edition_status(edition.id, EditionStatus.PAUSED)


def resume(store: Store, edition_id: int) -> None:
    """Let the scheduler send a paused edition again, where it stopped (as `digest resume`)."""
    edition = store.edition_by_id(edition_id)
    if edition.status != EditionStatus.PAUSED:
        raise InvalidInputError(f"edition #{edition.id} is {edition.status}, not paused")
    store.set_edition_status(edition.id, EditionStatus.SENDING)


def retry_failed(store: Store, edition_id: int, *, now: datetime) -> int:
    """Queue the edition's failed deliveries again (as `digest retry`); returns how many."""
    edition = store.edition_by_id(edition_id)
    requeued = store.requeue_failed(edition.id, now=now)
    if requeued:
        store.set_edition_status(edition.id, EditionStatus.SENDING)
    return requeued


def history(store: Store, *, limit: int = 30) -> list[EditionTotals]:
    """The newest editions with sent, failed, deferred, bounced, complained, unsubscribed."""
    return store.edition_totals(limit=limit)
