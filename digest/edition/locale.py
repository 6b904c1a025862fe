"""The reader's language: the templates' fixed words and the dates, per locale.

The words live in `templates/strings.toml`, one table per language; dates are formatted by
Babel (imported on first use: commands that never render do not pay for it). A subscriber's
locale picks its language's table, else the site's language, else English.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from digest.errors import RenderError

STRINGS_FILE = "strings.toml"
FALLBACK = "en"
KEYS = (
    "date", "published", "greeting", "intro_one", "intro_many", "note", "by", "read_more",
    "top_story", "in_brief", "also", "view_online", "unsubscribe", "preferences", "visit",
    "website", "why",
)  # fmt: skip
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class Words:
    """One language's fixed words, as the templates use them (`t.read_more`, ...)."""

    locale: str
    table: dict[str, str]

    def __getattr__(self, key: str) -> str:
        try:
            return self.table[key]
        except KeyError:
            raise AttributeError(key) from None

    def intro(self, *, count: int, list_name: str) -> str:
        """The sentence under the greeting: how many stories this copy holds."""
        chosen = self.table["intro_one"] if count == 1 else self.table["intro_many"]
        return chosen.format(count=count, list=list_name)

    def day(self, day: date) -> str:
        """The edition's date as the date line and the subject show it."""
        from babel.dates import format_date

        return str(format_date(day, self.table["date"], locale=self.locale))

    def moment(self, when: datetime) -> str:
        """When a story was published, short."""
        from babel.dates import format_datetime

        return str(format_datetime(when, self.table["published"], locale=self.locale))


def language_of(tag: str) -> str:
    """'hu' for 'hu', 'hu-HU' or 'HU_hu'; '' for an empty or malformed tag."""
    found = _LANGUAGE.match(tag.strip())
    return found.group(1).lower() if found else ""


class Catalogue:
    """Every language's words, read once from the templates folder."""

    def __init__(self, templates_dir: Path) -> None:
        path = templates_dir / STRINGS_FILE
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RenderError(f"cannot read the digest's words from {path}: {exc}") from exc
        self.words: dict[str, Words] = {}
        for locale, table in raw.items():
            missing = [key for key in KEYS if not isinstance(table.get(key), str)]
            if missing:
                raise RenderError(f"{path}: [{locale}] lacks {', '.join(missing)}")
            self.words[locale] = Words(locale, {key: table[key] for key in KEYS})
        if FALLBACK not in self.words:
            raise RenderError(f"{path} has no [{FALLBACK}] table, the last fallback")

    def resolve(self, locale: str, site_language: str) -> str:
        """The language to render in: the subscriber's, else the site's, else English."""
        for tag in (locale, site_language):
            language = language_of(tag)
            if language in self.words:
                return language
        return FALLBACK

    def __getitem__(self, language: str) -> Words:
        return self.words[language]
