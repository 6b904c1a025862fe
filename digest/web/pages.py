"""The web pages' templates (templates/web/) and the headers every response carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.errors import RenderError

# Pages hold no scripts; forms post only to this site; nothing may frame them.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# An archived edition is an email: inline styles and the site's https images, nothing else.
EDITION_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_DEFAULT_HEADERS = (
    ("content-security-policy", PAGE_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    # Token-bearing URLs (/u/..., /confirm/..., /preferences/...) must not leak as Referer.
    ("referrer-policy", "no-referrer"),
)
# Over https (directly, or as a trusted proxy says), browsers keep to https for a year.
HSTS = ("strict-transport-security", "max-age=31536000")
# Pages for one reader or one link: never cached, never indexed.
PRIVATE = {"cache-control": "no-store", "x-robots-tag": "noindex, nofollow"}


class Pages:
    """The Jinja2 environment of templates/web/, with autoescaping."""

    def __init__(self, templates_dir: Path, **globals_: Any) -> None:
        self.env = Environment(
            loader=FileSystemLoader(templates_dir / "web"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(globals_)

    def render(self, template: str, **context: Any) -> str:
        """The page `template` rendered with `context`."""
        try:
            return self.env.get_template(template).render(**context)
        except TemplateError as exc:
            raise RenderError(f"cannot render web page {template}: {exc}") from exc

    def response(
        self,
        template: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """An HTML response of the page `template`."""
        return HTMLResponse(self.render(template, **context), status_code=status, headers=headers)


class SecurityHeaders:
    """ASGI middleware: add the default security headers a response does not set itself, and
    HSTS when the request came over https (TrustedProxies, outside it, has set the scheme)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _DEFAULT_HEADERS:
                    headers.setdefault(name, value)
                if scope.get("scheme") == "https":
                    headers.setdefault(*HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
