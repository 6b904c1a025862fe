"""What readers did with an edition, and the numbers mailbox providers judge a sender by.

Rates are against delivered copies. Gmail asks bulk senders to keep the spam-complaint rate
under 0.3% (aim: 0.1%); `digest status` warns from COMPLAINT_WARNING and BOUNCE_WARNING on.
Clicks count people only: machine clicks (scanners, see `digest.operations.clicks`) are shown
apart, and so are the clicks on the archive's copy of the edition (site visitors, not
recipients: in neither the clicks nor their rate). Opens are shown only for lists with
opens = true, and labelled for what they are.

Unsubscribes are the ones credited to the edition (the newest of the list the reader had
been sent when they left, see `digest.store.schema.unsubscribes`), split by how: one-click
(RFC 8058, journaled or not) and page (the unsubscribe link's page, the preferences page);
the rest (a mail to the mailto: address, the publisher's commands) only in the total.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from typing import Any

from digest.edition.clicks import ARCHIVE_CLICK
from digest.models import DeliveryState, Edition, UnsubscribeChannel
from digest.store import Store

COMPLAINT_WARNING = 0.001
BOUNCE_WARNING = 0.02
OPENS_LABEL = "opens (unreliable: Apple Mail prefetches)"


# What happened to delivered copies, each also given as a rate against them.
_AGAINST_DELIVERED = (
    "bounced_hard",
    "bounced_soft",
    "complaints",
    "unsubscribes",
    "unsubscribes_one_click",
    "unsubscribes_page",
)


@dataclass(frozen=True, slots=True)
class ArticleClicks:
    """One article's clicks in an edition."""

    article_id: str
    title: str
    human: int
    machine: int
    archive: int = 0  # people's clicks on the archive's copy, apart from the mail's


@dataclass(frozen=True, slots=True)
class EditionStats:
    """An edition's health numbers and its clicks by article, in reading order."""

    edition_id: int
    list_slug: str
    edition_date: str
    delivered: int
    deferred: int
    failed: int
    bounced_hard: int
    bounced_soft: int
    complaints: int
    unsubscribes: int
    clicks: int
    machine_clicks: int
    articles: tuple[ArticleClicks, ...]
    opens: int | None = None
    unsubscribes_one_click: int = 0
    unsubscribes_page: int = 0
    archive_clicks: int = 0

    def rate(self, count: int) -> float:
        """`count` against delivered copies (0 when nothing was delivered)."""
        return count / self.delivered if self.delivered else 0.0

    def as_json(self) -> dict[str, Any]:
        """The numbers as `digest stats --json` prints them."""
        data = asdict(self)
        data["rates"] = {
            name: round(self.rate(getattr(self, name)), 6)
            for name in (*_AGAINST_DELIVERED, "clicks")
        }
        data["rates"]["bounced"] = round(self.rate(self.bounced_hard + self.bounced_soft), 6)
        if self.opens is None:
            del data["opens"]
        return data

    def warnings(self) -> list[str]:
        """What a sender must act on: complaints from 0.1%, bounces from 2% of delivered."""
        found = []
        complaints = self.rate(self.complaints)
        if complaints > COMPLAINT_WARNING:
            found.append(
                f"edition #{self.edition_id} ({self.list_slug}): complaint rate "
                f"{complaints:.2%} is over 0.1% (Gmail blocks from 0.3%)"
            )
        bounces = self.rate(self.bounced_hard + self.bounced_soft)
        if bounces > BOUNCE_WARNING:
            found.append(
                f"edition #{self.edition_id} ({self.list_slug}): bounce rate "
                f"{bounces:.2%} is over 2%: clean the list"
            )
        return found


def edition_stats(store: Store, edition: Edition, *, opens: bool = False) -> EditionStats:
    """The edition's numbers as the store holds them now."""
    states = store.delivery_counts(edition.id)
    bounces = store.bounce_counts(edition.id)
    counted = store.click_counts(edition.id)
    left = store.unsubscribe_counts(edition.id)
    titles = {a.id: a.title for a in store.articles_by_id(edition.article_ids)}
    by_article = {c.article_id: c for c in counted if c.kind == "click"}
    archived = {c.article_id: c.human for c in counted if c.kind == ARCHIVE_CLICK}
    order = [
        *edition.article_ids,
        *(a for a in {**by_article, **archived} if a not in edition.article_ids),
    ]
    articles = tuple(
        ArticleClicks(
            article_id=article_id,
            title=titles.get(article_id, article_id),
            human=by_article[article_id].human if article_id in by_article else 0,
            machine=by_article[article_id].machine if article_id in by_article else 0,
            archive=archived.get(article_id, 0),
        )
        for article_id in order
    )
    return EditionStats(
        edition_id=edition.id,
        list_slug=edition.list_slug,
        edition_date=edition.edition_date.isoformat(),
        delivered=states.get(DeliveryState.SENT, 0),
        deferred=states.get(DeliveryState.DEFERRED, 0),
        failed=states.get(DeliveryState.FAILED, 0),
        bounced_hard=bounces.get("hard", 0),
        bounced_soft=bounces.get("soft", 0),
        complaints=store.complaint_count(edition.id),
        unsubscribes=sum(left.values()),
        unsubscribes_one_click=left.get(UnsubscribeChannel.ONE_CLICK, 0),
        unsubscribes_page=left.get(UnsubscribeChannel.PAGE, 0),
        clicks=sum(a.human for a in articles),
        machine_clicks=sum(a.machine for a in articles),
        archive_clicks=sum(a.archive for a in articles),
        articles=articles,
        opens=sum(c.human for c in counted if c.kind == "open") if opens else None,
    )


# The edition's numbers repeated on each article's row, so a spreadsheet filters either way.
CSV_EDITION = ("delivered", "deferred", "failed", *_AGAINST_DELIVERED)


def stats_csv(stats: EditionStats) -> str:
    """The edition's clicks by article as CSV, one row per article, each with the edition's
    health numbers after the article's own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    article = ("article_id", "title", "clicks", "machine", "archive")
    writer.writerow(["edition", "list", "date", *article, *CSV_EDITION])
    head = [stats.edition_id, stats.list_slug, stats.edition_date]
    health = [getattr(stats, name) for name in CSV_EDITION]
    for a in stats.articles:
        writer.writerow([*head, a.article_id, a.title, a.human, a.machine, a.archive, *health])
    return buffer.getvalue()
