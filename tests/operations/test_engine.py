"""The delivery engine: pooled, recycled connections; pause, resume and retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import PausedError
from digest.models import DeliveryState, EditionStatus
from digest.operations.publisher import Publisher
from tests.conftest import NOW, RecordingHandler, SeededTemplates, settings_for
from tests.support.clicks import counted
from tests.support.dkim_dns import resolver


def engine_app(
    tmp_path: Path, port: int, database_url: str, templates: SeededTemplates, **delivery: object
) -> Publisher:
    base = settings_for(tmp_path, port, database_url=database_url)
    settings = base.model_copy(update={"delivery": base.delivery.model_copy(update=delivery)})
    templates.copy_into(settings)
    return Publisher(settings)


def test_connections_are_pooled_and_recycled(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> None:
    server, port = smtp_server
    publisher = engine_app(
        tmp_path, port, database_url, seeded_templates, connections=3, messages_per_connection=4
    )
    result = publisher.send("daily", now=NOW)
    sent = result.report.counts[DeliveryState.SENT]
    per_connection: dict[tuple[str, int], int] = {}
    for message in server.messages:
        per_connection[message.peer] = per_connection.get(message.peer, 0) + 1
    assert len(server.messages) == sent
    assert max(per_connection.values()) <= 4
    assert len(per_connection) >= -(-sent // 4)
    assert len({m.message["Message-ID"] for m in server.messages}) == sent


def test_pause_after_permanent_failures_then_resume_and_retry(
    tmp_path: Path,
    smtp_server: tuple[RecordingHandler, int],
    database_url: str,
    seeded_templates: SeededTemplates,
) -> None:
    server, port = smtp_server
    publisher = engine_app(
        tmp_path,
        port,
        database_url,
        seeded_templates,
        connections=1,
        pause_after_failures=3,
        batch_size=5,
    )
    everyone = [s.email for s in publisher.store.active_subscribers("daily")]
    for address in everyone:
        server.refuse[address] = "554 5.7.1 Message rejected: sender blocked by policy"
    result = publisher.send("daily", now=NOW)
    assert result.report.paused
    edition = result.edition
    assert edition is not None
    counts = publisher.store.delivery_counts(edition.id)
    assert 3 <= counts[DeliveryState.FAILED] < len(everyone)
    assert counts[DeliveryState.FAILED] + counts[DeliveryState.QUEUED] == len(everyone)
    assert publisher.store.edition_by_id(edition.id).status == EditionStatus.PAUSED
    with pytest.raises(PausedError, match="digest resume"):
        publisher.send("daily", now=NOW)
    # Policy refusals blame the sender: nobody was marked bounced.
    assert len(publisher.store.active_subscribers("daily")) == len(everyone)

    server.refuse.clear()
    resumed = publisher.resume(edition.id, now=NOW)
    assert resumed.counts == {DeliveryState.SENT: counts[DeliveryState.QUEUED]}
    requeued, retried = publisher.retry_failed(edition.id, now=NOW)
    assert requeued == counts[DeliveryState.FAILED]
    assert retried.counts == {DeliveryState.SENT: requeued}
    assert publisher.store.delivery_counts(edition.id) == {DeliveryState.SENT: len(everyone)}
    assert sorted(m.recipients[0] for m in server.messages) == sorted(everyone)
    assert publisher.store.edition_by_id(edition.id).status == EditionStatus.DONE


def test_every_message_is_dkim_signed_over_the_bytes_sent(
    tmp_path: Path, smtp_server: tuple[RecordingHandler, int], database_url: str
) -> None:
    import dkim

    from digest.config import DkimSettings
    from digest.mail.dkim import generate_key

    server, port = smtp_server
    key = generate_key(tmp_path / "keys", selector="d2026", domain="budapestpost.example")
    ed_key = generate_key(
        tmp_path / "keys", selector="e2026", domain="budapestpost.example", ed25519_key=True
    )
    base = settings_for(tmp_path, port, database_url=database_url)
    signed = base.model_copy(
        update={
            "dkim": DkimSettings(
                domain="budapestpost.example",
                selector="d2026",
                private_key=key.private_key_path,
                ed25519_selector="e2026",
                ed25519_private_key=ed_key.private_key_path,
            )
        }
    )
    publisher = Publisher(signed)
    publisher.init(seed=True, now=NOW)
    publisher.send("daily", now=NOW)
    dns = resolver(key, ed_key)

    def verdicts(data: bytes) -> list[bool]:
        verifier = dkim.DKIM(data)
        found = []
        for index in range(2):  # the rsa-sha256 signature, then the ed25519-sha256 one
            try:
                found.append(bool(verifier.verify(idx=index, dnsfunc=dns)))
            except dkim.DKIMException:
                found.append(False)
        return found

    assert server.messages
    for message in server.messages:
        assert message.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
        assert verdicts(message.data) == [True, True]
        tampered = message.data.replace(b"/u/daily/", b"/u/weekly/", 1)
        assert verdicts(tampered) == [False, False]


def test_status_shows_the_most_recent_errors(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int]
) -> None:
    server = smtp_server[0]
    server.refuse["emma.clarke@example.com"] = "451 4.3.0 Try again later"
    server.refuse["reka.kovary@example.com"] = "550 5.1.1 No such user"
    publisher.send("daily", now=NOW)
    (summary,) = publisher.status()
    assert len(summary.recent_errors) == 2
    assert any(
        line.startswith("emma.clarke@example.com: deferred: 451 4.3.0")
        for line in summary.recent_errors
    )
    assert any(
        line.startswith("reka.kovary@example.com: failed: 550 5.1.1")
        for line in summary.recent_errors
    )


def test_section_choices_render_once_per_distinct_choice(
    publisher: Publisher, smtp_server: tuple[RecordingHandler, int], tmp_path: Path
) -> None:
    from lxml import html as lxml_html
    from sqlalchemy import update

    from digest.store.schema import subscribers, subscriptions

    server = smtp_server[0]
    choices = {
        "odon.gyori@example.hu": ["Business", "Technology"],
        "reka.kovary@example.com": ["technology", "business"],  # the same choice, spelt otherwise
        "emma.clarke@example.com": ["Europe"],
        "laszlo.nagy@example.hu": ["Nonexistent"],
    }
    with publisher.store.engine.begin() as tx:
        for address, sections in choices.items():
            sid = (
                tx.execute(subscribers.select().where(subscribers.c.email_key == address)).one().id
            )
            tx.execute(
                update(subscriptions)
                .where(subscriptions.c.subscriber_id == sid)
                .values(sections=sections)
            )
    calls = {"render": 0, "variants": 0}
    renderer = publisher.renderer
    real_render, real_variants = renderer.render, renderer.variants

    def counting_render(*args: object, **kwargs: object) -> object:
        calls["render"] += 1
        return real_render(*args, **kwargs)  # type: ignore[arg-type]

    def counting_variants(*args: object, **kwargs: object) -> object:
        calls["variants"] += 1
        return real_variants(*args, **kwargs)  # type: ignore[arg-type]

    renderer.render = counting_render  # type: ignore[method-assign]
    renderer.variants = counting_variants  # type: ignore[method-assign]
    result = publisher.send("daily", now=NOW)
    # The edition is rendered once; each language's variants come from one inlined library,
    # never a render per choice or per subscriber.
    languages = {s.locale or "" for s in publisher.store.active_subscribers("daily")}
    assert calls["render"] == 1
    assert 1 <= calls["variants"] <= len(languages)
    assert result.report.counts[DeliveryState.SKIPPED] == 1  # nothing in "Nonexistent"
    edition = result.edition
    assert edition is not None
    sections_of = {
        counted(publisher.settings, edition.list_slug, edition.edition_date, a.id, a.url): a.section
        for a in publisher.store.articles_by_id(edition.article_ids)
    }
    for address, wanted in choices.items():
        copies = server.for_address(address)
        if address == "laszlo.nagy@example.hu":
            assert copies == []
            continue
        (copy,) = copies
        document = lxml_html.fromstring(copy.message.get_body(("html",)).get_content())
        linked = {
            sections_of[a.get("href")] for a in document.iter("a") if a.get("href") in sections_of
        }
        assert linked and {s.casefold() for s in linked} <= {w.casefold() for w in wanted}
    everyone = (
        server.for_address("ors.fuzfa@example.hu")[0].message.get_body(("html",)).get_content()
    )
    assert len({s for s in sections_of.values() if s in everyone}) > 2
    # The preview of a subscriber with a choice is their copy, byte for byte apart from Date.
    preview = publisher.preview(
        "daily", now=NOW, out_dir=tmp_path, subscriber="odon.gyori@example.hu"
    )
    (sent,) = server.for_address("odon.gyori@example.hu")
    assert preview.eml.read_bytes().split(b"\r\n", 1)[1] == sent.data.split(b"\r\n", 1)[1]
