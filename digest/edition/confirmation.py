"""The double opt-in confirmation mail: a short transactional text message, built as bytes.

Its From is the transactional address in `[web]`, never a digest's From (EMAIL.md #11), and no
text the visitor typed goes into it (#77): only the list names and the signed link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from digest.config import Settings
from digest.errors import RenderError

MAIL_TEMPLATE = "web/confirm_mail.txt.j2"
# Header lines folded at 78; the long confirm URL stays in the QP body, never in a header.
_POLICY = policy.SMTP


@dataclass(frozen=True, slots=True)
class ConfirmationMail:
    """A finished message and its envelope."""

    sender: str
    recipient: str
    data: bytes


def confirmation_mail(
    settings: Settings, *, to: str, list_names: Sequence[str], confirm_url: str, now: datetime
) -> ConfirmationMail:
    """The message asking `to` to confirm; `to` must already be one validated addr-spec."""
    web, site = settings.web, settings.site
    env = Environment(
        loader=FileSystemLoader(settings.templates_dir),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    try:
        text = env.get_template(MAIL_TEMPLATE).render(
            site=site,
            list_names=list(list_names),
            confirm_url=confirm_url,
            confirm_hours=int(web.confirm_hours),
        )
    except TemplateError as exc:
        raise RenderError(f"cannot render {MAIL_TEMPLATE}: {exc}") from exc
    local, _, domain = web.confirmation_from.partition("@")
    message = EmailMessage(policy=_POLICY)
    message["From"] = Address(web.confirmation_from_name, local, domain)
    to_local, _, to_domain = to.partition("@")
    message["To"] = Address("", to_local, to_domain)
    message["Subject"] = f"Please confirm your subscription to {site.name}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("confirm", domain=site.mail_domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, cte="quoted-printable")
    return ConfirmationMail(
        sender=web.confirmation_from, recipient=to, data=message.as_bytes(policy=_POLICY)
    )
