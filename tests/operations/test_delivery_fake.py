"""Delivery through the in-process relay: retry on 4xx, stop on 5xx, reclaim after a drop."""

from __future__ import annotations

import itertools
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from digest.errors import TransportError
from digest.mail.fake import FakeRelay, deferred, dropped, refused
from digest.mail.transport import Envelope
from digest.models import DeliveryState, EditionStatus, SubscriptionStatus
from digest.operations.editions import edition_date
from digest.operations.publisher import Publisher
from tests.conftest import NOW, settings_for

LATER = NOW + timedelta(hours=2)  # past the first retry time (5 minutes, give or take 10%)


@pytest.fixture
def relay() -> FakeRelay:
    return FakeRelay()


@pytest.fixture
def publisher(tmp_path: Path, relay: FakeRelay) -> Publisher:
    application = Publisher(settings_for(tmp_path, 25), connect=relay.connect)
    application.init(seed=True, now=NOW)
    return application


def states(publisher: Publisher, edition_id: int) -> dict[str, str]:
    return {row["email"]: row["state"] for row in publisher.store.deliveries(edition_id)}


def test_everyone_gets_one_copy(publisher: Publisher, relay: FakeRelay) -> None:
    result = publisher.send("daily", now=NOW)
    everyone = {who.email for who in publisher.store.active_subscribers("daily")}
    assert result.report.counts == {DeliveryState.SENT: len(everyone)}
    assert sorted(item.recipient for item in relay.sent) == sorted(everyone)
    assert result.edition is not None
    assert publisher.store.edition_by_id(result.edition.id).status == EditionStatus.DONE


def test_a_4xx_is_retried_later_and_a_5xx_is_not(publisher: Publisher, relay: FakeRelay) -> None:
    late, gone, *_ = sorted(who.email for who in publisher.store.active_subscribers("daily"))
    relay.script(late, deferred())
    relay.script(gone, refused(550, "5.1.1 no such user"))
    first = publisher.send("daily", now=NOW)
    edition = first.edition
    assert edition is not None
    assert states(publisher, edition.id)[late] == DeliveryState.DEFERRED
    assert states(publisher, edition.id)[gone] == DeliveryState.FAILED
    assert not relay.to(late) and not relay.to(gone)
    assert publisher.store.edition_by_id(edition.id).status == EditionStatus.SENDING

    again = publisher.deliver(edition, now=NOW)  # not yet due: nothing goes out
    assert again.counts == {}
    retried = publisher.deliver(edition, now=LATER)
    assert retried.counts == {DeliveryState.SENT: 1}
    assert len(relay.to(late)) == 1 and not relay.to(gone)
    assert states(publisher, edition.id)[gone] == DeliveryState.FAILED
    assert publisher.store.edition_by_id(edition.id).status == EditionStatus.DONE


def test_a_hard_bounce_marks_the_subscription_bounced(
    publisher: Publisher, relay: FakeRelay
) -> None:
    gone = min(who.email for who in publisher.store.active_subscribers("daily"))
    relay.script(gone, refused(550, "5.1.1 no such user"))
    publisher.send("daily", now=NOW)
    assert gone not in {who.email for who in publisher.store.active_subscribers("daily")}
    who = publisher.store.subscriber_by_email(gone)
    assert publisher.store.subscription_status(who.id, "daily") == SubscriptionStatus.BOUNCED


def test_a_drop_after_the_data_is_unknown_and_resent(
    publisher: Publisher, relay: FakeRelay
) -> None:
    lost = min(who.email for who in publisher.store.active_subscribers("daily"))
    relay.script(lost, dropped())
    edition = publisher.send("daily", now=NOW).edition
    assert edition is not None
    assert states(publisher, edition.id)[lost] == DeliveryState.UNKNOWN
    publisher.deliver(edition, now=LATER)
    assert states(publisher, edition.id)[lost] == DeliveryState.SENT
    assert len(relay.to(lost)) == 2  # the server had the first copy; the ledger could not know
    ids = {
        BytesParser(policy=policy.default).parsebytes(m.data)["Message-ID"] for m in relay.to(lost)
    }
    assert len(ids) == 1


def test_an_unreachable_relay_claims_nothing(publisher: Publisher, relay: FakeRelay) -> None:
    relay.down = "cannot reach SMTP server 127.0.0.1:25: connection refused"
    with pytest.raises(TransportError, match="connection refused"):
        publisher.send("daily", now=NOW)
    edition = publisher.store.edition_for(
        "daily", edition_date(publisher.settings.list("daily"), NOW)
    )
    assert edition is not None
    assert set(states(publisher, edition.id).values()) == {DeliveryState.QUEUED}


def sessions_of(relay: FakeRelay) -> dict[int, list[tuple[Envelope, Envelope | None]]]:
    by_session: dict[int, list[tuple[Envelope, Envelope | None]]] = {}
    for session, envelope, then in relay.transactions:
        by_session.setdefault(session, []).append((envelope, then))
    return by_session


def test_the_next_envelope_goes_ahead_only_to_the_message_sent_next(
    tmp_path: Path, relay: FakeRelay
) -> None:
    settings = settings_for(tmp_path, 25)
    delivery = settings.delivery.model_copy(update={"connections": 2, "messages_per_connection": 5})
    publisher = Publisher(settings.model_copy(update={"delivery": delivery}), connect=relay.connect)
    publisher.init(seed=True, now=NOW)
    result = publisher.send("daily", now=NOW)
    everyone = {who.email for who in publisher.store.active_subscribers("daily")}
    assert result.report.counts == {DeliveryState.SENT: len(everyone)}
    assert sorted(item.recipient for item in relay.sent) == sorted(everyone)
    announced = 0
    for transactions in sessions_of(relay).values():
        assert len(transactions) <= 5
        for (_, then), (envelope, _) in itertools.pairwise(transactions):
            assert then in (None, envelope)
            announced += then is not None
        # A session's last message announces nothing: the renewal or the end comes next.
        assert transactions[-1][1] is None
    assert announced


def test_a_paced_run_announces_no_envelope_ahead(tmp_path: Path, relay: FakeRelay) -> None:
    # An open DATA must not wait for the pacer's slot: the relay could time it out.
    settings = settings_for(tmp_path, 25)
    delivery = settings.delivery.model_copy(update={"rate_per_second": 1000.0})
    publisher = Publisher(settings.model_copy(update={"delivery": delivery}), connect=relay.connect)
    publisher.init(seed=True, now=NOW)
    publisher.send("daily", now=NOW)
    assert relay.transactions and all(then is None for _, _, then in relay.transactions)
