"""`digest init --seed`: load the sample articles, subscribers and subscriptions, idempotently.

Bad rows are reported with their file and line and skipped; the rest load.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digest.errors import InvalidInputError, NotFoundError
from digest.intake.articles import article_from_record
from digest.intake.people import person
from digest.models import Article, SubscriptionStatus
from digest.store import Store


@dataclass
class SeedReport:
    """What the seed files added, and each row that was refused with its reason."""

    articles: int = 0
    subscribers: int = 0  # new ones: a second `digest init --seed` adds none
    subscriptions: int = 0
    rejected: list[str] = field(default_factory=list)


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        # DictReader's line_num after a row is that row's last physical line.
        return [(reader.line_num, {k: (v or "") for k, v in row.items() if k}) for row in reader]


def load_seeds(store: Store, folder: Path, *, now: datetime) -> SeedReport:
    """Load `folder`'s articles.json, subscribers.csv and subscriptions.csv into the store."""
    report = SeedReport()
    articles_file = folder / "articles.json"
    try:
        records = json.loads(articles_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{articles_file}: cannot read: {exc}") from exc
    items: list[Article] = []
    for index, record in enumerate(records, start=1):
        try:
            items.append(article_from_record(record, now=now))
        except InvalidInputError as exc:
            report.rejected.append(f"{articles_file.name} item {index}: {exc}")
    report.articles, _ = store.save_articles(items, now=now, update_existing=False)

    subscribers_file = folder / "subscribers.csv"
    known: dict[str, int] = {}
    for line, row in _rows(subscribers_file):
        try:
            who = person(
                email=row.get("email", ""),
                name=row.get("name", ""),
                locale=row.get("locale", ""),
                timezone=row.get("timezone", ""),
            )
        except InvalidInputError as exc:
            report.rejected.append(f"{subscribers_file.name} line {line}: {exc}")
            continue
        subscriber_id, created = store.upsert_subscriber(
            email=who.email, name=who.name, locale=who.locale, timezone=who.timezone, now=now
        )
        known[row["email"].strip().lower()] = subscriber_id
        report.subscribers += created

    subscriptions_file = folder / "subscriptions.csv"
    for line, row in _rows(subscriptions_file):
        where = f"{subscriptions_file.name} line {line}"
        listed = known.get(row.get("email", "").strip().lower())
        if listed is None:
            report.rejected.append(f"{where}: {row.get('email')!r} is not a loaded subscriber")
            continue
        try:
            status = SubscriptionStatus(row.get("status", "active").strip() or "active")
            before, _ = store.subscribe(listed, row.get("list", "").strip(), status, now=now)
        except ValueError:
            report.rejected.append(f"{where}: unknown status {row.get('status')!r}")
            continue
        except NotFoundError as exc:
            report.rejected.append(f"{where}: {exc}")
            continue
        report.subscriptions += before is None
    return report
