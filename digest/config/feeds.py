"""Where articles come from: the feeds `digest run` polls and how their items are read."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from digest.config.checks import HEADER_UNSAFE, Section, http_url, safe_header_text, slug


class FeedRules(Section):
    """How one feed's items become articles: id prefix, sections, updates (also for imports)."""

    name: str
    sections: dict[str, str] = Field(default_factory=dict)
    default_section: str = Field(default="News", min_length=1, max_length=100)
    resend_updated: bool = False
    # An item's first category is its section when `sections` does not map it; false: the
    # default section instead.
    sections_from_categories: bool = True

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        return slug(value)

    @field_validator("sections")
    @classmethod
    def _sections(cls, value: dict[str, str]) -> dict[str, str]:
        for category, section in value.items():
            safe_header_text(category)
            if not section.strip() or len(section) > 100 or HEADER_UNSAFE.search(section):
                raise ValueError(f"section for {category!r} must be 1-100 characters on one line")
        return value


class FeedSettings(FeedRules):
    """One RSS, Atom or JSON Feed source that `digest run` polls."""

    url: str

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return http_url(value)


class FeedsSettings(Section):
    """Feed polling: how often, how long to wait, how much to read, and the feeds themselves."""

    poll_minutes: float = Field(default=15.0, gt=0)
    timeout: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=5_000_000, ge=1024)
    user_agent: str = "digest-feeds/0.1"
    # Feeds on loopback, private, link-local or reserved addresses are refused (a URL or a
    # redirect must not make the poller reach into this machine's network) unless allowed here.
    allow_private: bool = False
    allow_networks: tuple[str, ...] = ()
    # A new item that names no image of its own gets its article page's og:image: at most this
    # many pages are read per feed per poll (0: none), each within `page_timeout` seconds and
    # only its first `page_bytes` bytes, through the same address guard as the feeds.
    page_images: int = Field(default=20, ge=0)
    page_timeout: float = Field(default=5.0, gt=0)
    page_bytes: int = Field(default=262_144, ge=1024)
    sources: tuple[FeedSettings, ...] = ()

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a network such as 10.1.2.0/24: {exc}") from exc
        return value

    @field_validator("user_agent")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return safe_header_text(value)

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: tuple[FeedSettings, ...]) -> tuple[FeedSettings, ...]:
        for what in ("name", "url"):
            seen = [getattr(feed, what) for feed in value]
            repeated = sorted({item for item in seen if seen.count(item) > 1})
            if repeated:
                raise ValueError(f"feed {what}s must be unique; repeated: {', '.join(repeated)}")
        return value
