"""`Settings`: every section together, with the environment winning over the TOML file."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from digest.config.desk import DeskSettings
from digest.config.feeds import FeedsSettings
from digest.config.lists import ListSettings, SchedulerSettings
from digest.config.secrets import DEFAULT_SECRETS_FILE
from digest.config.sending import (
    BouncesSettings,
    CaptureSettings,
    DeliverySettings,
    DkimSettings,
    SMTPSettings,
)
from digest.config.site import SiteSettings, WebSettings
from digest.errors import NotFoundError

CHECKOUT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "DIGEST_"


class Settings(BaseSettings):
    """Everything `digest` can be told; see config/digest.toml for each key's meaning."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database_url: str = "sqlite:///var/digest.sqlite3"
    templates_dir: Path = CHECKOUT / "templates"
    seeds_dir: Path = CHECKOUT / "seeds"
    preview_dir: Path = Path("var/preview")
    # One-click unsubscribes waiting for a busy database (see digest/operations/journal.py).
    unsubscribe_journal: Path = Path("var/unsubscribes.journal")
    # Where `digest init` writes a random unsubscribe secret when none is configured.
    secrets_file: Path = DEFAULT_SECRETS_FILE
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
    desk: DeskSettings = DeskSettings()

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

    def relay(self) -> SMTPSettings:
        """The SMTP settings as sending uses them: the EHLO name is site.mail_domain unless
        smtp.local_hostname is set."""
        if self.smtp.local_hostname:
            return self.smtp
        return self.smtp.model_copy(update={"local_hostname": self.site.mail_domain})

    def envelope_sender(self, mailing_list: ListSettings) -> str:
        """Where bounces of the list's mail go: bounces.address, else the list's From."""
        return self.bounces.address or mailing_list.from_address

    def list(self, slug: str) -> ListSettings:
        """The configured list called `slug`."""
        for item in self.lists:
            if item.slug == slug:
                return item
        known = ", ".join(item.slug for item in self.lists) or "none configured"
        raise NotFoundError(f"unknown list {slug!r} (known: {known})")
