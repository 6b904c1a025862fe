"""Typed settings: `config/digest.toml`, overridden by `DIGEST_*` environment variables.

Built once at the edge (CLI, scheduler) and passed down as the sub-object a function needs.
"""

from digest.config.desk import DeskSettings
from digest.config.feeds import FeedRules, FeedSettings, FeedsSettings
from digest.config.lists import ListSettings, SchedulerSettings
from digest.config.loader import DEFAULT_CONFIG, load_settings, masked
from digest.config.sending import (
    BouncesSettings,
    CaptureSettings,
    DeliverySettings,
    DkimSettings,
    SMTPSettings,
)
from digest.config.settings import CHECKOUT, Settings
from digest.config.site import SiteSettings, WebSettings
from digest.config.subjects import subject_environment

__all__ = [
    "CHECKOUT",
    "DEFAULT_CONFIG",
    "BouncesSettings",
    "CaptureSettings",
    "DeliverySettings",
    "DeskSettings",
    "DkimSettings",
    "FeedRules",
    "FeedSettings",
    "FeedsSettings",
    "ListSettings",
    "SMTPSettings",
    "SchedulerSettings",
    "Settings",
    "SiteSettings",
    "WebSettings",
    "load_settings",
    "masked",
    "subject_environment",
]
