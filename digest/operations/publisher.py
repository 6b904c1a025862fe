"""The operations behind the commands: init, send, test send, preview, status.

Built once from Settings at the edge; composes the store, the pure stages and delivery.
"""

from __future__ import annotations

import contextlib
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import ListSettings, Settings
from digest.config.secrets import write_private
from digest.edition.render import Renderer, fill_slots
from digest.edition.structure import edition_data, to_json
from digest.edition.timing import delivery_hold
from digest.errors import DigestError, NotFoundError, PausedError
from digest.models import Approval, Edition, EditionStatus, RunOutcome, Subscriber, Verdict
from digest.operations.delivery import DeliveryOptions, DeliveryReport, Transport, Watch, deliver
from digest.operations.editions import (
    Draft,
    Variants,
    draft_edition,
    edition_date,
    edition_message_ids,
    envelope_sender,
    recipient,
    store_edition,
    unsaved_edition,
)
from digest.operations.journal import UnsubscribeJournal
from digest.operations.ledger import owner_name
from digest.operations.production import dkim_signer, refuse_shipped_examples, warnings
from digest.operations.sizing import MessageSize, checked_size, sample_copy
from digest.operations.supply import Supply, start
from digest.operations.trial import send_test
from digest.store import EditionSummary, Store
from digest.store.schema import make_engine, upgrade

if TYPE_CHECKING:
    from digest.mail.transport import Reply
    from digest.operations.seeding import SeedReport


@dataclass
class SendResult:
    """What `digest send` did for one list."""

    list_slug: str
    edition: Edition | None
    created: bool = False
    nothing_new: bool = False
    queued: int = 0
    recipients: int = 0
    report: DeliveryReport = field(default_factory=DeliveryReport)
    size: MessageSize | None = None  # one copy's size; None when nothing is sent
    # approval = "required": made, but held for an editor's approval (or skipped at the deadline)
    waiting: bool = False
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class PreviewFiles:
    """Where `digest preview` wrote the edition."""

    html: Path
    text: Path
    eml: Path
    json: Path  # the edition's structure (digest.edition.structure) the bodies come from
    recipient: str
    stored: bool
    size: MessageSize
    skipped_by_send: bool = False  # a draft with nothing new: `send` would make no edition


log = logging.getLogger(__name__)


class Publisher:
    """Settings, store and renderer, made once per process."""

    def __init__(
        self, settings: Settings, *, connect: Callable[[], Transport] | None = None
    ) -> None:
        self.settings = settings
        # How sends reach the relay; tests may put an in-process transport here.
        self.connect = connect or self._connect_to_relay
        self.store = Store(make_engine(settings.database_url))
        self._renderer: Renderer | None = None
        self.signer = dkim_signer(settings)
        self._warned: set[str] = set()  # each production warning once per process

    def _connect_to_relay(self) -> Transport:
        # Imported here, as the signer and the seeds are: `digest status` starts on what it uses.
        from digest.mail.transport import SMTPConnection

        refuse_shipped_examples(self.settings)
        for warning in warnings(self.settings, signed=self.signer is not None):
            if warning not in self._warned:
                self._warned.add(warning)
                log.warning(warning)
        return SMTPConnection(
            self.settings.relay(),
            session_deadline=self.settings.delivery.session_deadline,
            transaction_deadline=self.settings.delivery.transaction_deadline,
        )

    @property
    def renderer(self) -> Renderer:
        """Templates are loaded on first use: `init` and `status` need none."""
        if self._renderer is None:
            self._renderer = Renderer(self.settings.templates_dir)
        return self._renderer

    def init(self, *, seed: bool, now: datetime) -> tuple[str, SeedReport | None]:
        """Create or upgrade the schema, register the configured lists, optionally load seeds.

        Returns the schema's revision (its Alembic revision id) and what the seeds added.
        """
        from digest.operations.seeding import load_seeds

        revision = upgrade(self.store.engine, now=now)
        self.store.sync_lists(((item.slug, item.name) for item in self.settings.lists), now=now)
        report = load_seeds(self.store, self.settings.seeds_dir, now=now) if seed else None
        return revision, report

    def edition_or_draft(self, mailing_list: ListSettings, now: datetime) -> Edition | Draft:
        """The stored edition of the day at `now`, or the draft it would be."""
        stored = self.store.edition_for(mailing_list.slug, edition_date(mailing_list, now))
        return stored or draft_edition(
            self.settings.site, self.store, self.renderer, mailing_list, now=now
        )

    def send(
        self,
        list_slug: str,
        *,
        now: datetime,
        dry_run: bool = False,
        watch: Watch | None = None,
        deliver: bool = True,
    ) -> SendResult:
        """Make today's edition if needed, queue every active subscriber, deliver what is due.

        With `deliver=False` the deliveries are only queued, for `digest worker`s to send.
        """
        mailing_list = self.settings.list(list_slug)
        found = self.edition_or_draft(mailing_list, now)
        result = SendResult(
            list_slug=list_slug, edition=found if isinstance(found, Edition) else None
        )
        if isinstance(found, Draft) and not found.selection and not mailing_list.send_when_empty:
            result.nothing_new = True
            return result
        # Measured, and refused when too big, before anything is stored or queued.
        result.size = self._size(
            self._signed(sample_copy(self.settings.site, mailing_list, found, now=now))
        )
        if isinstance(found, Draft):
            if dry_run:
                result.recipients = len(self.store.active_subscribers(list_slug))
                return result
            result.edition, result.created = store_edition(self.store, found, now=now)
        edition = result.edition
        assert edition is not None
        if dry_run:
            result.recipients = self._would_go(edition, now=now)
            return result
        if edition.status == EditionStatus.PAUSED:
            raise PausedError(
                f"edition #{edition.id} of {list_slug} is paused; "
                f"`digest resume {edition.id}` restarts it"
            )
        if mailing_list.approval is Approval.REQUIRED:
            verdict = self.store.verdict_for(edition.id)
            if verdict is None or verdict.verdict is Verdict.SKIPPED:
                result.waiting, result.skipped = verdict is None, verdict is not None
                return result
        if not deliver:
            result.queued = self.queue(edition, now=now)
            return result
        result.report = self.deliver(edition, now=now, watch=watch)
        result.queued = result.report.queued
        return result

    def queue(
        self, edition: Edition, *, now: datetime, committed: Callable[[int], None] | None = None
    ) -> int:
        """Put every active subscriber not yet in the edition's ledger into it, chunk by
        committed chunk; returns how many. The sweep of `digest run` then delivers them."""
        mailing_list = self.settings.list(edition.list_slug)
        return self.store.queue_deliveries(
            edition,
            message_id=edition_message_ids(
                self.settings.site, edition.list_slug, edition.edition_date
            ),
            now=now,
            not_before=delivery_hold(mailing_list, built=edition.created_at),
            committed=committed,
        )

    def _signed(self, data: bytes) -> bytes:
        return self.signer.sign(data) if self.signer else data

    def _size(self, signed: bytes, *, sending: bool = True) -> MessageSize:
        """One copy's size as sent; over the limit, `send` warns once or refuses."""
        size = checked_size(signed, self.settings.delivery, sending=sending)
        if size.over and sending:
            log.warning("%s", size.warning())
        return size

    def _would_go(self, edition: Edition, *, now: datetime) -> int:
        """How many copies `send` would hand to the relay now: the active subscribers not yet
        in the ledger, and the rows already due. A finished edition has none."""
        return self.store.unqueued_count(edition) + self.store.due_count(edition, now=now)

    def send_by_hand(
        self, list_slug: str, *, now: datetime, dry_run: bool = False, watch: Watch | None = None
    ) -> SendResult:
        """`digest send`: `send`, recorded as a run by hand so `digest status` shows it.

        The record is of its own outcome, which the scheduler's missed-run logic never reads
        (`Store.last_run`), so a send by hand neither skips nor repeats a scheduled slot; the
        one-edition-per-day key keeps the two from sending an edition twice.
        """
        self.settings.list(list_slug)  # an unknown list is the error, not a run to record
        try:
            result = self.send(list_slug, now=now, dry_run=dry_run, watch=watch)
        except DigestError as exc:
            if not dry_run:
                # The record is a courtesy: when it cannot be written (no database), the
                # send's own error is the one to report.
                with contextlib.suppress(DigestError):
                    self._record_by_hand(list_slug, now, None, f"failed: {exc}")
            raise
        if not dry_run:
            edition = result.edition
            detail = "nothing new" if result.nothing_new else ""
            detail = "waiting for approval" if result.waiting else detail
            self._record_by_hand(list_slug, now, edition.id if edition else None, detail)
        return result

    def _record_by_hand(
        self, list_slug: str, now: datetime, edition_id: int | None, detail: str
    ) -> None:
        self.store.record_run(
            list_slug,
            slot=now,
            outcome=RunOutcome.BY_HAND,
            edition_id=edition_id,
            detail=detail,
            owner=owner_name(),
            now=now,
        )

    def deliver(
        self, edition: Edition, *, now: datetime, watch: Watch | None = None
    ) -> DeliveryReport:
        """Send what is due of a stored edition through the configured relay, while a thread
        beside it finishes queueing the edition (a half-queued one included)."""
        mailing_list = self.settings.list(edition.list_slug)
        watch = watch or Watch()
        supply = Supply(
            journal=UnsubscribeJournal(self.settings.unsubscribe_journal),
            unsubscribe=lambda readers: self.store.unsubscribe_all(readers, now=now),
            stop=watch.stop,
        )
        # Counted before the queueing starts, so that progress shows a total from the start.
        expected = self._would_go(edition, now=now)
        queueing = start(supply, lambda done: self.queue(edition, now=now, committed=done))
        try:
            report = deliver(
                self.store,
                edition,
                templates=Variants(
                    self.settings.site, mailing_list, self.store, self.renderer, edition
                ),
                recipient=lambda claim: recipient(
                    self.settings.site,
                    mailing_list,
                    edition.edition_date,
                    claim.subscriber,
                    message_id=claim.message_id,
                ),
                envelope_from=lambda claim: envelope_sender(
                    self.settings, mailing_list, claim.edition_id, claim.subscriber.id
                ),
                connect=self.connect,
                clock=_clock_from(now),
                options=DeliveryOptions.from_settings(self.settings.delivery, owner=owner_name()),
                watch=watch,
                signer=self.signer,
                supply=supply,
                due=expected,
            )
        finally:
            queueing.join()
        if supply.error is not None:
            raise supply.error
        report.queued = supply.queued
        return report

    def resume(
        self, edition_id: int, *, now: datetime, watch: Watch | None = None
    ) -> DeliveryReport:
        """Restart a paused (or interrupted) edition where it stopped."""
        edition = self.store.edition_by_id(edition_id)
        self.store.set_edition_status(edition.id, EditionStatus.SENDING)
        return self.deliver(edition, now=now, watch=watch)

    def retry_failed(
        self, edition_id: int, *, now: datetime, watch: Watch | None = None
    ) -> tuple[int, DeliveryReport]:
        """Queue an edition's failed deliveries again on purpose, and send them."""
        edition = self.store.edition_by_id(edition_id)
        requeued = self.store.requeue_failed(edition.id, now=now)
        self.store.set_edition_status(edition.id, EditionStatus.SENDING)
        return requeued, self.deliver(edition, now=now, watch=watch)

    def test_send(self, list_slug: str, *, to: str, now: datetime) -> Reply:
        """Send the edition as it stands to one address; the ledger is not touched."""
        return send_test(self, list_slug, to=to, now=now)

    def preview(
        self, list_slug: str, *, now: datetime, out_dir: Path, subscriber: str | None = None
    ) -> PreviewFiles:
        """Write the HTML, text and .eml that `send` would deliver at `now`; records nothing."""
        mailing_list = self.settings.list(list_slug)
        found = self.edition_or_draft(mailing_list, now)
        if subscriber:
            who = self.store.subscriber_by_email(subscriber)
        else:
            people = self.store.active_subscribers(list_slug)
            who = (
                people[0]
                if people
                else Subscriber(id=0, email=f"reader@{self.settings.site.mail_domain}")
            )
        edition = found if isinstance(found, Edition) else unsaved_edition(found, now=now)
        day, nonce = edition.edition_date, edition.slot_nonce
        variants = Variants(self.settings.site, mailing_list, self.store, self.renderer, edition)
        choice = self.store.subscription_sections(who.id, list_slug) if who.id else None
        # An empty draft still previews (as the whole edition), so an editor sees what is skipped.
        chosen = variants.variant(choice if edition.article_ids else None, who.locale)
        if chosen is None:
            raise NotFoundError(
                f"{who.email} chose sections with nothing in this edition; nothing would be sent"
            )
        template = chosen.template
        personal = recipient(self.settings.site, mailing_list, day, who)
        values = template.slot_values(personal)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = out_dir / f"{list_slug}-{day.isoformat()}"
        data = self._signed(template.personalise(personal, date=now))
        files = PreviewFiles(
            html=stem.with_suffix(".html"),
            text=stem.with_suffix(".txt"),
            eml=stem.with_suffix(".eml"),
            json=stem.with_suffix(".json"),
            recipient=who.email,
            stored=isinstance(found, Edition),
            size=self._size(data, sending=False),
            skipped_by_send=isinstance(found, Draft)
            and not found.selection
            and not mailing_list.send_when_empty,
        )
        # Each file holds the reader's address and unsubscribe token: only the owner reads them.
        write_private(
            files.html,
            fill_slots(chosen.html, nonce, {k: html.escape(v) for k, v in values.items()}).encode(),
        )
        write_private(files.text, fill_slots(chosen.text, nonce, values).encode())
        shown = variants.selection(choice)
        structure = edition_data(
            shown, list_slug=list_slug, edition_date=day, subject=chosen.subject
        )
        write_private(files.json, to_json(structure).encode())
        write_private(files.eml, data)
        return files

    def status(self, *, limit: int = 20) -> list[EditionSummary]:
        """The newest editions with their delivery counts."""
        return self.store.editions_with_counts(limit=limit)


def _clock_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start` now and runs at real speed from there, so a run told the
    time (tests, `--at`) keeps its claims, leases and retry times consistent with it."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)
