"""A pause from the desk reaches a send under way: the run stops claiming after the batch it
holds, the edition stays paused, and a resume sends the rest once each (real SMTP server)."""

from __future__ import annotations

from pathlib import Path

from digest.models import DeliveryState, EditionStatus, SubscriptionStatus
from digest.operations import watching
from digest.operations.publisher import Publisher
from digest.operations.recorder import DeliveryReport, Watch
from digest.store import Enrolment
from tests.conftest import NOW, RecordingHandler, settings_for

BATCH = 40


def test_a_pause_stops_a_running_send_and_a_resume_finishes_it(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp_server
    settings = settings_for(tmp_path, port)
    delivery = settings.delivery.model_copy(update={"batch_size": BATCH, "commit_group": 10})
    publisher = Publisher(settings.model_copy(update={"delivery": delivery}))
    publisher.init(seed=True, now=NOW)
    store = publisher.store
    people = [
        Enrolment(f"olvaso{n:03d}@example.hu", "", "", "", SubscriptionStatus.ACTIVE)
        for n in range(300)
    ]
    store.enrol(people, "daily", now=NOW)
    queued = publisher.send("daily", now=NOW, deliver=False)
    edition = queued.edition
    assert edition is not None
    paused_at: list[int] = []

    def pause_once(report: DeliveryReport) -> None:
        if report.done >= 25 and not paused_at:
            paused_at.append(report.done)
            watching.pause(store, edition.id)  # what the desk's Pause button does

    first = publisher.deliver(edition, now=NOW, watch=Watch(progress=pause_once))

    assert first.paused_by_editor and not first.paused
    assert store.edition_by_id(edition.id).status == EditionStatus.PAUSED
    counts = store.delivery_counts(edition.id)
    sent = counts.get(DeliveryState.SENT, 0)
    assert paused_at and paused_at[0] <= sent <= 2 * BATCH  # the batch it held, no more
    assert counts.get(DeliveryState.QUEUED, 0) == queued.queued - sent
    watching.resume(store, edition.id)
    publisher.deliver(edition, now=NOW)
    assert store.delivery_counts(edition.id) == {DeliveryState.SENT: queued.queued}
    assert store.edition_by_id(edition.id).status == EditionStatus.DONE
    recipients = [m.recipients[0] for m in handler.messages]
    assert len(recipients) == len(set(recipients)) == queued.queued
