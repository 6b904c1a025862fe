"""Typed settings: `config/digest.toml`, overridden by `DIGEST_*` environment variables.

Built once at the edge (CLI, scheduler) and passed down as the sub-object a function needs.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Sequence
from datetime import date, time
from pathlib import Path
from typing import Any, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, StrictUndefined, TemplateError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from digest.errors import ConfigError, NotFoundError
from digest.models import SMTPSecurity

CHECKOUT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path("config/digest.toml")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_HEADER_UNSAFE = re.compile(r"[\r\n\x00]")
_ENV_PREFIX = "DIGEST_"
# Subjects render in a plain (never HTML-escaped) environment where every name must exist, as
# in Renderer.subject; a trial render with the names it passes finds a broken template when
# the config loads rather than at send time.
_SUBJECT_ENV = Environment(autoescape=False, undefined=StrictUndefined)
_SUBJECT_SAMPLE: dict[str, object] = {
    "list_name": "Daily",
    "site_name": "Budapest Post",
    "date_label": "Thursday 3 December 2026",
    "date": date(2026, 12, 3),
    "lead_title": "Lead story",
    "article_count": 12,
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _safe_header_text(value: str) -> str:
    if _HEADER_UNSAFE.search(value):
        raise ValueError("must not contain CR, LF or NUL")
    return value


class SMTPSettings(_Section):
    """Where and how messages are handed over."""

    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)
    security: SMTPSecurity = SMTPSecurity.NONE
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout: float = Field(default=30.0, gt=0)
    local_hostname: str = "localhost"
    ca_file: Path | None = None


class SiteSettings(_Section):
    """The publisher: identity, footer facts and the unsubscribe key."""

    name: str = "Budapest Post"
    tagline: str = "Cum Deo pro Patria et Libertate"
    base_url: str = "https://budapestpost.example"
    postal_address: str = "Budapest Post Kft., Váci utca 1, 1052 Budapest, Hungary"
    mail_domain: str = "budapestpost.example"
    language: str = "en"
    unsubscribe_secret: SecretStr = SecretStr("change-me-in-production")
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
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("name", "tagline", "postal_address", "greeting_fallback")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return _safe_header_text(value)


class ListSettings(_Section):
    """One newsletter: what goes in, when, and from whom."""

    slug: str
    name: str
    description: str = ""
    sections: tuple[str, ...] = ()
    max_articles: int = Field(default=12, ge=1, le=200)
    lookback_hours: float = Field(default=24.0, gt=0)
    schedule: str = "0 7 * * *"
    timezone: str = "Europe/Budapest"
    subject: str = "{{ list_name }}, {{ date_label }}: {{ lead_title }}"
    from_name: str = "Budapest Post"
    from_address: str = "newsletter@budapestpost.example"
    reply_to: str | None = None
    send_when_empty: bool = False
    grace_hours: float = Field(default=6.0, gt=0, le=24 * 7)
    deliver_at: time | None = None
    per_subscriber_timezone: bool = False

    @field_validator("subject")
    @classmethod
    def _subject_template(cls, value: str) -> str:
        try:
            _SUBJECT_ENV.from_string(value).render(**_SUBJECT_SAMPLE)
        except TemplateError as exc:
            raise ValueError(f"not a usable subject template: {exc}") from exc
        return value

    @field_validator("deliver_at")
    @classmethod
    def _local_time(cls, value: time | None) -> time | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("give a local time such as 07:00; the zone comes from the list")
        return value

    @model_validator(mode="after")
    def _hold_needs_a_time(self) -> ListSettings:
        if self.per_subscriber_timezone and self.deliver_at is None:
            raise ValueError("per_subscriber_timezone needs deliver_at (such as 07:00)")
        return self

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("use lower-case letters, digits and hyphens")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a 5-field cron expression: {exc}") from exc
        return value

    @field_validator("from_address", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("name", "from_name", "description")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return _safe_header_text(value)

    @property
    def zone(self) -> ZoneInfo:
        """The list's time zone, for edition dates and schedules."""
        return ZoneInfo(self.timezone)


class SchedulerSettings(_Section):
    """`digest run`: how often it looks for due work, and how far back."""

    sweep_seconds: float = Field(default=60.0, gt=0)
    recent_hours: float = Field(default=48.0, gt=0)


class DeliverySettings(_Section):
    """How fast and how carefully the engine sends."""

    connections: int = Field(default=4, ge=1, le=64)
    messages_per_connection: int = Field(default=100, ge=1)
    seconds_per_connection: float = Field(default=300.0, gt=0)
    rate_per_second: float = Field(default=0.0, ge=0)
    hourly_cap: int = Field(default=0, ge=0)
    batch_size: int = Field(default=500, ge=1)
    commit_group: int = Field(default=50, ge=1)
    lease_seconds: float = Field(default=600.0, gt=0)
    pause_after_failures: int = Field(default=50, ge=1)
    retry_first_seconds: float = Field(default=300.0, gt=0)
    retry_max_seconds: float = Field(default=4000.0, gt=0)
    lifetime_hours: float = Field(default=24.0, gt=0)


class CaptureSettings(_Section):
    """The built-in capture SMTP server that saves every message as an .eml file."""

    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=1, le=65535)
    directory: Path = Path("var/mail")


class DkimSettings(_Section):
    """DKIM signing (RFC 6376): on when `private_key` is set; then domain and selector must be."""

    domain: str = ""
    selector: str = ""
    private_key: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> DkimSettings:
        if self.private_key is not None and not (self.domain and self.selector):
            raise ValueError("domain and selector must be set when private_key is")
        return self


class BouncesSettings(_Section):
    """What `digest bounces` does with soft bounces (hard ones suppress at once)."""

    soft_bounce_limit: int = Field(default=3, ge=1, le=100)


class FeedRules(_Section):
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
        if not _SLUG.match(value):
            raise ValueError("use lower-case letters, digits and hyphens")
        return value

    @field_validator("sections")
    @classmethod
    def _sections(cls, value: dict[str, str]) -> dict[str, str]:
        for category, section in value.items():
            _safe_header_text(category)
            if not section.strip() or len(section) > 100 or _HEADER_UNSAFE.search(section):
                raise ValueError(f"section for {category!r} must be 1-100 characters on one line")
        return value


class FeedSettings(FeedRules):
    """One RSS, Atom or JSON Feed source that `digest run` polls."""

    url: str

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value


class FeedsSettings(_Section):
    """Feed polling: how often, how long to wait, how much to read, and the feeds themselves."""

    poll_minutes: float = Field(default=15.0, gt=0)
    timeout: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=5_000_000, ge=1024)
    user_agent: str = "digest-feeds/0.1"
    sources: tuple[FeedSettings, ...] = ()

    @field_validator("user_agent")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return _safe_header_text(value)

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: tuple[FeedSettings, ...]) -> tuple[FeedSettings, ...]:
        for what in ("name", "url"):
            seen = [getattr(feed, what) for feed in value]
            repeated = sorted({item for item in seen if seen.count(item) > 1})
            if repeated:
                raise ValueError(f"feed {what}s must be unique; repeated: {', '.join(repeated)}")
        return value


class WebSettings(_Section):
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

    @field_validator("confirmation_from")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("confirmation_from_name")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return _safe_header_text(value)


class Settings(BaseSettings):
    """Everything `digest` can be told; see config/digest.toml for each key's meaning."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database_url: str = "sqlite:///var/digest.sqlite3"
    templates_dir: Path = CHECKOUT / "templates"
    seeds_dir: Path = CHECKOUT / "seeds"
    preview_dir: Path = Path("var/preview")
    site: SiteSettings = SiteSettings()
    smtp: SMTPSettings = SMTPSettings()
    capture: CaptureSettings = CaptureSettings()
    delivery: DeliverySettings = DeliverySettings()
    dkim: DkimSettings = DkimSettings()
    bounces: BouncesSettings = BouncesSettings()
    lists: tuple[ListSettings, ...] = ()
    feeds: FeedsSettings = FeedsSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    web: WebSettings = WebSettings()

    @field_validator("lists")
    @classmethod
    def _unique_slugs(cls, value: tuple[ListSettings, ...]) -> tuple[ListSettings, ...]:
        slugs = [item.slug for item in value]
        duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if duplicates:
            raise ValueError(f"list slugs must be unique; repeated: {', '.join(duplicates)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init values; the environment must win over it.
        return (env_settings, init_settings)

    def list(self, slug: str) -> ListSettings:
        """The configured list called `slug`."""
        for item in self.lists:
            if item.slug == slug:
                return item
        known = ", ".join(item.slug for item in self.lists) or "none configured"
        raise NotFoundError(f"unknown list {slug!r} (known: {known})")


def load_settings(path: Path | None = None) -> Settings:
    """Read the TOML file (explicit path, $DIGEST_CONFIG, or config/digest.toml) and the env."""
    explicit = path or (
        Path(os.environ["DIGEST_CONFIG"]) if os.environ.get("DIGEST_CONFIG") else None
    )
    chosen = explicit or DEFAULT_CONFIG
    values: dict[str, Any] = {}
    if chosen.exists():
        try:
            values = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{chosen}: not valid TOML: {exc}") from exc
    elif explicit is not None:
        raise ConfigError(f"config file {chosen} does not exist")
    try:
        return Settings(**values)
    except SettingsError as exc:
        # Raised while reading the environment, before validation: a JSON-valued variable
        # whose value is not JSON. Its message names only the top-level field.
        raise ConfigError(_unparsable_environment(exc)) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{_source_of(first['loc'], chosen)}: {first['msg']}{more}") from exc


def _environment() -> dict[str, str]:
    # pydantic-settings matches variable names case-insensitively.
    return {name.upper(): value for name, value in os.environ.items()}


def _env_name(path: Sequence[str | int]) -> str:
    return _ENV_PREFIX + "__".join(str(part) for part in path).upper()


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _source_of(loc: Sequence[str | int], config: Path) -> str:
    """Where the bad value came from: the variable that set it, or the one that set a section
    holding it and the setting's path; else the config file and the path."""
    environment = _environment()
    for cut in range(len(loc), 0, -1):
        name = _env_name(loc[:cut])
        if name in environment:
            return name if cut == len(loc) else f"{name}: {_dotted(loc)}"
    return f"{config}: {_dotted(loc)}" if loc else str(config)


def _is_structured(path: Sequence[str]) -> bool:
    """Whether the setting at `path` is one pydantic-settings reads from the environment as
    JSON (a section, a table of lists, a mapping), rather than as a plain string."""
    model: type[BaseModel] | None = Settings
    annotation: Any = None
    for part in path:
        if model is None:
            return False
        fields = {name.upper(): info for name, info in model.model_fields.items()}
        info = fields.get(part.upper())
        if info is None:
            return False
        annotation = info.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    return model is not None or get_origin(annotation) in (dict, tuple, list)


def _unparsable_environment(exc: SettingsError) -> str:
    """The one-line message for a variable that should hold JSON and does not."""
    found = re.search(r'field "([^"]+)"', str(exc))
    field = found.group(1) if found else ""
    top = _env_name([field])
    for name, value in sorted(_environment().items()):
        if name != top and not name.startswith(top + "__"):
            continue
        path = name[len(_ENV_PREFIX) :].split("__")
        if not _is_structured(path):
            continue
        try:
            json.loads(value)
        except ValueError as error:
            return f"{name}: not valid JSON ({error})"
    return f"environment: {exc}"


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret shown as '**********'."""
    return settings.model_dump(mode="json")
