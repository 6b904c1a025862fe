"""What every web handler shares: settings, store, operations, pages, guards and the clock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from digest.config import Settings
from digest.edition.confirmation import ConfirmationMail
from digest.errors import DigestError
from digest.operations.clicks import ClickResolver, CopySent
from digest.operations.journal import UnsubscribeJournal
from digest.operations.publisher import Publisher
from digest.operations.readers import Subscriptions
from digest.web.batches import Batches
from digest.web.clicks_writer import ClickWriter
from digest.web.guard import CSRF_COOKIE, CSRF_FIELD, Csrf, RateLimiter
from digest.web.oneclick import OneClickWriter
from digest.web.pages import Pages

log = logging.getLogger("digest.web")
HOUR, MINUTE = 3600.0, 60.0
# Attempts one address may make at the desk's sign-in form; the lock-out guards each account.
DESK_SIGN_INS_PER_IP_PER_MINUTE = 20
# Readers whose delivery times one query reads (per_subscriber clicks).
COPIES_PER_QUERY = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebContext:
    """Built once per `create_app`; handlers only read it (the limiters lock themselves)."""

    settings: Settings
    publisher: Publisher
    subscriptions: Subscriptions
    pages: Pages
    csrf: Csrf
    signups_by_ip: RateLimiter
    signups_by_address: RateLimiter
    unsubscribes_by_ip: RateLimiter
    desk_sign_ins_by_ip: RateLimiter
    one_click: OneClickWriter
    clicks: ClickResolver
    click_writer: ClickWriter
    copies_sent: Batches[CopySent]
    clock: Callable[[], datetime] = field(default=_utc_now)
    ticker: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Callable[[], datetime] | None = None
    ) -> WebContext:
        """Everything the handlers need, from the settings."""
        publisher = Publisher(settings)
        site, web = settings.site, settings.web
        now = clock or _utc_now
        clicks = ClickResolver(settings, publisher.store)
        return cls(
            settings=settings,
            publisher=publisher,
            subscriptions=Subscriptions(
                settings,
                publisher.store,
                sign=publisher.signer.sign if publisher.signer else None,
            ),
            pages=Pages(settings.templates_dir, site=site, lists=settings.lists),
            csrf=Csrf(
                secret=site.unsubscribe_secret.get_secret_value().encode(),
                key_id=site.unsubscribe_key_id,
                secrets_by_id=site.unsubscribe_secrets(),
            ),
            signups_by_ip=RateLimiter(web.signups_per_ip_per_hour, HOUR),
            signups_by_address=RateLimiter(web.signups_per_address_per_hour, HOUR),
            unsubscribes_by_ip=RateLimiter(web.unsubscribes_per_ip_per_minute, MINUTE),
            desk_sign_ins_by_ip=RateLimiter(DESK_SIGN_INS_PER_IP_PER_MINUTE, MINUTE),
            one_click=OneClickWriter(
                lambda readers: publisher.store.unsubscribe_all(readers, now=now()),
                journal=UnsubscribeJournal(settings.unsubscribe_journal),
            ),
            clicks=clicks,
            click_writer=ClickWriter(publisher.store.record_clicks),
            # Readers' delivery times that clicks wait for: one query for those asked together.
            copies_sent=Batches(clicks.remember_deliveries, size=COPIES_PER_QUERY),
            clock=now,
        )

    def form_page(
        self, request: Request, template: str, *, status: int = 200, **context: object
    ) -> Response:
        """A page with a CSRF-protected form: the hidden field's value and its cookie."""
        cookie = self.csrf.cookie_value(request)
        response = self.pages.response(
            template,
            status=status,
            headers={"cache-control": "no-store"},
            csrf_field=CSRF_FIELD,
            csrf_token=self.csrf.form_token(cookie),
            **context,
        )
        response.set_cookie(
            CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    def send_confirmation(self, mail: ConfirmationMail) -> None:
        """Send a confirmation mail after the response went out; failures are logged."""
        try:
            if not self.subscriptions.send(mail):
                log.warning("the relay refused a confirmation mail")
        except DigestError as exc:
            log.warning("confirmation mail not sent: %s", exc)


def web_context(request: Request) -> WebContext:
    """What the handlers share, kept on the app by `create_app`."""
    found: WebContext = request.app.state.ctx
    return found
