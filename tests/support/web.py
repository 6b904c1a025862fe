"""Helpers shared by the web tests: settings for a served site, tokens, links in mail."""

from __future__ import annotations

import re
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from digest.config import Settings, WebSettings
from digest.edition.tokens import unsubscribe_token
from digest.store import Store
from tests.conftest import ROOT, settings_for
from tests.support.databases import sqlite_url

EDITOR_TOKEN = "editor-secret-token"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_settings(
    tmp_path: Path, smtp_port: int, base_url: str, *, database_url: str | None = None, **web: Any
) -> Settings:
    """The repo's config, its mail going to `smtp_port` and its links to `base_url`; its
    database SQLite in tmp_path unless `database_url` is given."""
    base = settings_for(tmp_path, smtp_port, database_url=database_url or sqlite_url(tmp_path))
    return base.model_copy(
        update={
            "site": base.site.model_copy(update={"base_url": base_url}),
            "web": WebSettings(**{"editor_token": SecretStr(EDITOR_TOKEN), **web}),
        }
    )


def token_for(settings: Settings, store: Store, email: str, list_slug: str) -> str:
    """The unsubscribe token the digest gives `email` for `list_slug`."""
    site = settings.site
    return unsubscribe_token(
        secret=site.unsubscribe_secret.get_secret_value().encode(),
        key_id=site.unsubscribe_key_id,
        subscriber_id=store.subscriber_by_email(email).id,
        list_slug=list_slug,
    )


def status_of(store: Store, email: str, list_slug: str) -> str | None:
    """The subscription's status, or None if there is none."""
    found = store.subscriptions_of(store.subscriber_by_email(email).id).get(list_slug)
    return None if found is None else str(found[0])


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link_in(message: EmailMessage, pattern: str) -> str:
    """The first URL in the text part that matches `pattern`."""
    found = re.search(pattern, text_of(message))
    assert found, text_of(message)
    return found.group(0)


def start_web(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`digest web` on 127.0.0.1:`port` as its own process; stdout and stderr (uvicorn's
    access log and the rest) together, for the caller to read."""
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "web", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def altered(token: str) -> str:
    """`token` with one character in its middle changed: base64's last character may carry
    only padding bits, so changing that one can leave the same bytes, and a genuine token."""
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
