"""The publisher's identity and unsubscribe keys, and the web front end that serves readers."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from digest.config.checks import Section, address, domain_name, http_url, safe_header_text

# The shipped key: known to everyone, so fit only for mail that never leaves this machine.
PLACEHOLDER_SECRET = "change-me-in-production"
# Names reserved for examples (RFC 2606, RFC 6761): no reader can follow a link to them.
_EXAMPLE_TLDS = ("example", "test", "invalid", "localhost")
_EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")


def is_example_domain(host: str) -> bool:
    """True for a name reserved for examples, such as budapestpost.example or example.com."""
    name = host.lower().rstrip(".")
    return name.rsplit(".", 1)[-1] in _EXAMPLE_TLDS or any(
        name == domain or name.endswith("." + domain) for domain in _EXAMPLE_DOMAINS
    )


class SiteSettings(Section):
    """The publisher: identity, footer facts and the unsubscribe key."""

    name: str = "Budapest Post"
    tagline: str = "Cum Deo pro Patria et Libertate"
    base_url: str = "https://budapestpost.example"
    postal_address: str = "Budapest Post Kft., Váci utca 1, 1052 Budapest, Hungary"
    mail_domain: str = "budapestpost.example"
    language: str = "en"
    unsubscribe_secret: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    greeting_fallback: str = "reader"
    unsubscribe_key_id: int = Field(default=1, ge=0, le=255)
    feedback_sender_id: str = Field(default="budapestpost", pattern=r"^[A-Za-z0-9._-]{5,15}$")
    # Retired keys by key id: links they signed keep working after a rotation.
    previous_unsubscribe_secrets: dict[int, SecretStr] = Field(default_factory=dict)

    @field_validator("previous_unsubscribe_secrets")
    @classmethod
    def _key_ids(cls, value: dict[int, SecretStr]) -> dict[int, SecretStr]:
        if any(not 0 <= key_id <= 255 for key_id in value):
            raise ValueError("key ids are 0-255")
        return value

    @model_validator(mode="after")
    def _current_key_not_retired(self) -> SiteSettings:
        if self.unsubscribe_key_id in self.previous_unsubscribe_secrets:
            raise ValueError("unsubscribe_key_id must not also be a previous key id")
        return self

    def placeholders(self) -> list[str]:
        """What still holds a shipped example value, each as one hint on what to set."""
        found = []
        if self.unsubscribe_secret.get_secret_value() in ("", PLACEHOLDER_SECRET):
            found.append(
                "site.unsubscribe_secret is the shipped placeholder "
                "(run `digest init` to make one, or set DIGEST_SITE__UNSUBSCRIBE_SECRET)"
            )
        if is_example_domain(urlsplit(self.base_url).hostname or ""):
            found.append(f"site.base_url is an example address ({self.base_url}): set your site's")
        if is_example_domain(self.mail_domain):
            found.append(f"site.mail_domain is an example domain ({self.mail_domain}): set yours")
        return found

    def unsubscribe_secrets(self) -> dict[int, bytes]:
        """Every key that may have signed a link, by key id: the current one and the retired."""
        ring = {
            k: v.get_secret_value().encode() for k, v in self.previous_unsubscribe_secrets.items()
        }
        ring[self.unsubscribe_key_id] = self.unsubscribe_secret.get_secret_value().encode()
        return ring

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @field_validator("mail_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return domain_name(value)

    @field_validator("name", "tagline", "postal_address", "greeting_fallback")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return safe_header_text(value)


class WebSettings(Section):
    """`digest web`: sign-up, confirmation, unsubscribe, preferences, archive, editor preview."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    editor_token: SecretStr = SecretStr("")
    signups_per_ip_per_hour: int = Field(default=10, ge=1)
    signups_per_address_per_hour: int = Field(default=3, ge=1)
    unsubscribes_per_ip_per_minute: int = Field(default=300, ge=1)
    confirm_hours: float = Field(default=72.0, gt=0)
    confirmation_from_name: str = "Budapest Post subscriptions"
    confirmation_from: str = "subscriptions@budapestpost.example"
    # Largest request body read, in bytes; a larger one is answered 413 before it is parsed.
    max_body_bytes: int = Field(default=16_384, ge=1024)
    # Seconds a client has to send a request's headers (and to start the next on a kept-alive
    # connection) before the connection is closed.
    header_timeout: int = Field(default=10, ge=1)
    # Proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are believed.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an address or network: {exc}") from exc
        return value

    @field_validator("confirmation_from")
    @classmethod
    def _address(cls, value: str) -> str:
        return address(value)

    @field_validator("confirmation_from_name")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return safe_header_text(value)
