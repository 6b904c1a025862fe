"""Readers' own choices: sign-up with double opt-in, confirmation, unsubscribe, preferences.

Composes the store, the signed tokens and the transport; the web pages and the mailto handler
call it. Nothing here tells a caller whether an address or a token belongs to anybody unless
the caller proved it holds a genuine link: `unsubscribe` returns nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import ListSettings, Settings
from digest.edition.confirmation import ConfirmationMail, confirmation_mail
from digest.edition.signing import (
    Confirmation,
    confirmation_token,
    preferences_token,
    read_confirmation,
    read_preferences_token,
)
from digest.edition.tokens import read_unsubscribe_token
from digest.errors import InvalidInputError
from digest.intake.people import clean_name, normalise_address
from digest.mail.transport import SMTPConnection
from digest.models import SubscriptionStatus, UnsubscribeChannel
from digest.operations.production import refuse_shipped_examples
from digest.rules import SUPPRESSED, StatusChange
from digest.store import Store

# Sections a list without its own section list offers: those of the last month's articles.
SECTION_WINDOW = timedelta(days=31)
_TOKEN_LIMIT = 512
_MAILTO_LOCAL = re.compile(r"unsubscribe\+([a-z0-9][a-z0-9-]{0,62})\.([A-Za-z0-9_-]{1,200})")


@dataclass(frozen=True, slots=True)
class ListChoice:
    """One list on the preferences page."""

    slug: str
    name: str
    subscribed: bool
    bounced: bool
    sections: tuple[str, ...]
    chosen: frozenset[str]


@dataclass(frozen=True, slots=True)
class Preferences:
    """What the preferences page shows: the address and every list with its sections."""

    email: str
    lists: tuple[ListChoice, ...]


class Subscriptions:
    """The operations behind the sign-up, confirm, unsubscribe and preferences pages."""

    def __init__(
        self, settings: Settings, store: Store, *, sign: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.sign = sign
        self._secrets = settings.site.unsubscribe_secrets()

    @property
    def _key(self) -> tuple[bytes, int]:
        site = self.settings.site
        return site.unsubscribe_secret.get_secret_value().encode(), site.unsubscribe_key_id

    def _lists(self, slugs: Collection[str]) -> list[ListSettings]:
        return [item for item in self.settings.lists if item.slug in slugs]

    # -- sign-up and confirmation ------------------------------------------------------------

    def sign_up(
        self, *, email: str, name: str, list_slugs: Collection[str], now: datetime
    ) -> ConfirmationMail:
        """Record a pending request and make its confirmation mail (the caller sends it).

        A new subscriber is stored without a name: the name travels inside the signed link and
        is only written once the owner of the address confirms. Subscriptions already active,
        unsubscribed or bounced are left as they are until the link is confirmed.
        Raises InvalidInputError for a bad address or no known list.
        """
        address = normalise_address(email)
        chosen = self._lists(set(list_slugs))
        if not chosen or len(chosen) != len(set(list_slugs)):
            raise InvalidInputError("choose at least one of the newsletters offered")
        subscriber_id, _ = self.store.upsert_subscriber(
            email=address, name="", locale="", timezone="", now=now
        )
        for item in chosen:  # pending until confirmed; active and suppressed stay as they are
            self.store.subscribe(subscriber_id, item.slug, SubscriptionStatus.PENDING, now=now)
        secret, key_id = self._key
        token = confirmation_token(
            Confirmation(
                subscriber_id=subscriber_id,
                issued_at=int(now.timestamp()),
                list_slugs=tuple(item.slug for item in chosen),
                name=clean_name(name),
            ),
            secret=secret,
            key_id=key_id,
        )
        return confirmation_mail(
            self.settings,
            to=address,
            list_names=[item.name for item in chosen],
            confirm_url=f"{self.settings.site.base_url}/confirm/{token}",
            now=now,
        )

    def send(self, mail: ConfirmationMail) -> bool:
        """Hand a transactional mail to the relay; True if it was accepted."""
        refuse_shipped_examples(self.settings)
        data = self.sign(mail.data) if self.sign else mail.data
        with SMTPConnection(self.settings.relay()) as connection:
            reply = connection.send(mail.sender, mail.recipient, data)
        return reply.accepted

    def pending_confirmation(self, token: str, *, now: datetime) -> Confirmation | None:
        """The confirmation a link carries if it is genuine, not expired and its lists exist."""
        if len(token) > _TOKEN_LIMIT:
            return None
        found = read_confirmation(token, secrets=self._secrets)
        if found is None:
            return None
        age = now.timestamp() - found.issued_at
        if not -300 <= age <= self.settings.web.confirm_hours * 3600:
            return None
        if not self._lists(found.list_slugs):
            return None
        return found

    def confirm(self, token: str, *, now: datetime) -> tuple[list[str], str] | None:
        """Activate the lists a genuine link names; (list names, preferences token) or None.

        A subscription that was unsubscribed or bounced after the link was made stays so: an
        old confirmation mail cannot undo a later unsubscribe.
        """
        found = self.pending_confirmation(token, now=now)
        if found is None or self.store.subscriber_by_id(found.subscriber_id) is None:
            return None
        current = self.store.subscriptions_of(found.subscriber_id)
        names = []
        for item in self._lists(found.list_slugs):
            status, _, updated_at = current.get(item.slug, (None, None, None))
            later = updated_at is not None and updated_at.timestamp() > found.issued_at + 1
            if status in SUPPRESSED and later:
                continue
            self.store.set_subscription_status(
                found.subscriber_id,
                item.slug,
                SubscriptionStatus.ACTIVE,
                by=StatusChange.READER,
                now=now,
            )
            names.append(item.name)
        if found.name:
            self.store.set_subscriber_name(found.subscriber_id, found.name)
        return names, self.preferences_token(found.subscriber_id)

    def preferences_token(self, subscriber_id: int) -> str:
        """The token of the subscriber's preferences link."""
        secret, key_id = self._key
        return preferences_token(subscriber_id, secret=secret, key_id=key_id)

    # -- unsubscribe -------------------------------------------------------------------------

    def unsubscribe_reader(self, list_slug: str, token: str) -> int | None:
        """The subscriber a genuinely signed token names for the list, or None; no database.

        Only the signature is checked, so it tells a caller nothing it did not already know:
        whether the link was made with the site's secret, not whether the reader still exists.
        """
        if len(token) > _TOKEN_LIMIT:
            return None
        return read_unsubscribe_token(token, list_slug=list_slug, secrets=self._secrets)

    def unsubscribe_address(self, address: str, *, now: datetime) -> bool:
        """Act on a mail to unsubscribe+<list>.<token>@<mail_domain>; True if it was genuine."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        match = _MAILTO_LOCAL.fullmatch(local)
        if match is None or domain.lower() != self.settings.site.mail_domain.lower():
            return False
        list_slug, token = match.groups()
        if list_slug not in {item.slug for item in self.settings.lists}:
            return False
        subscriber_id = read_unsubscribe_token(token, list_slug=list_slug, secrets=self._secrets)
        if subscriber_id is None:
            return False
        self.store.unsubscribe(subscriber_id, list_slug, channel=UnsubscribeChannel.MAIL, now=now)
        return True

    # -- preferences -------------------------------------------------------------------------

    def _subscriber_id(self, token: str) -> int | None:
        if len(token) > _TOKEN_LIMIT:
            return None
        return read_preferences_token(token, secrets=self._secrets)

    def leaving(
        self, token: str, subscribed: Collection[str]
    ) -> list[tuple[int, str, UnsubscribeChannel]] | None:
        """The (subscriber, list, page) unsubscribes a preferences form asks for, each list it
        left unticked, from the token alone (None if forged): no database, which may be busy."""
        subscriber_id = self._subscriber_id(token)
        if subscriber_id is None:
            return None
        return [
            (subscriber_id, item.slug, UnsubscribeChannel.PAGE)
            for item in self.settings.lists
            if item.slug not in subscribed
        ]

    def preferences(self, token: str, *, now: datetime) -> Preferences | None:
        """What the preferences page of a genuine link shows, or None."""
        subscriber_id = self._subscriber_id(token)
        who = None if subscriber_id is None else self.store.subscriber_by_id(subscriber_id)
        if who is None:
            return None
        current = self.store.subscriptions_of(who.id)
        recent = self.store.article_sections(since=now - SECTION_WINDOW)
        choices = []
        for item in self.settings.lists:
            status, chosen, _ = current.get(item.slug, (None, None, None))
            offered = item.sections or tuple(recent)
            extra = tuple(s for s in chosen or () if s not in offered)
            choices.append(
                ListChoice(
                    slug=item.slug,
                    name=item.name,
                    subscribed=status == SubscriptionStatus.ACTIVE,
                    bounced=status == SubscriptionStatus.BOUNCED,
                    sections=(*offered, *extra),
                    chosen=frozenset(offered + extra if chosen is None else chosen),
                )
            )
        return Preferences(email=who.email, lists=tuple(choices))

    def save_preferences(
        self,
        token: str,
        *,
        subscribed: Collection[str],
        sections: Mapping[str, Collection[str]],
        now: datetime,
    ) -> Preferences | None:
        """Store the lists and sections a genuine link's owner chose; the page after, or None.

        A ticked list becomes active (a bounced one stays bounced: sign up again for that);
        an unticked one is unsubscribed. The sections are stored per list: none ticked or all
        ticked is stored as "every section" (NULL), so sections added later are included.
        """
        shown = self.preferences(token, now=now)
        subscriber_id = self._subscriber_id(token)
        if shown is None or subscriber_id is None:
            return None
        for choice in shown.lists:
            if choice.slug not in subscribed:
                self.store.unsubscribe(
                    subscriber_id, choice.slug, channel=UnsubscribeChannel.PAGE, now=now
                )
                continue
            if not choice.bounced:
                self.store.set_subscription_status(
                    subscriber_id,
                    choice.slug,
                    SubscriptionStatus.ACTIVE,
                    by=StatusChange.READER,
                    now=now,
                )
            picked = [s for s in choice.sections if s in set(sections.get(choice.slug, ()))]
            every = not picked or len(picked) == len(choice.sections)
            self.store.set_sections(subscriber_id, choice.slug, None if every else picked, now=now)
        return self.preferences(token, now=now)
