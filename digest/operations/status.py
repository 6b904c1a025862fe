"""What `digest status` reports: each list's next and last run; editions by their ledger; each
feed's last poll."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.config import FeedSettings, ListSettings
from digest.edition.timing import next_slot
from digest.models import Edition, EditionStatus, ListRun
from digest.operations.ledger import OPEN_STATES
from digest.store import Store


@dataclass(frozen=True, slots=True)
class ListStatus:
    """One list as `digest status` shows it."""

    settings: ListSettings
    next_run: datetime | None
    last_run: ListRun | None
    last_edition: Edition | None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """One configured feed as `digest status` and `digest articles feeds` show it."""

    name: str
    url: str
    last_polled: datetime | None
    error: str | None
    articles: int

    def line(self) -> str:
        """Name, URL, last poll (UTC), articles stored and the outcome, tab-separated: the
        whole error text of a failing feed, on the feed's one line."""
        when = f"{self.last_polled:%Y-%m-%d %H:%M}" if self.last_polled else "never polled"
        stored = f"{self.articles} article" + ("" if self.articles == 1 else "s")
        if self.error:
            outcome = "failed: " + " ".join(self.error.split())
        else:
            outcome = "ok" if self.last_polled else ""
        return "\t".join((self.name, self.url, when, stored, outcome)).rstrip("\t")


def feed_statuses(sources: tuple[FeedSettings, ...], store: Store) -> list[FeedStatus]:
    """Each configured feed's last poll, its error (None: it went well) and its stored
    articles, in the order of the configuration."""
    polls = store.feed_polls()
    counts = store.feed_article_counts([source.name for source in sources])
    return [
        FeedStatus(
            name=source.name,
            url=source.url,
            last_polled=polls.get(source.url, (None, None))[0],
            error=polls.get(source.url, (None, None))[1],
            articles=counts[source.name],
        )
        for source in sources
    ]


def list_statuses(
    lists: tuple[ListSettings, ...], store: Store, *, now: datetime
) -> list[ListStatus]:
    """Each configured list's next run, last recorded run (by hand or scheduled) and last
    edition."""
    return [
        ListStatus(
            settings=item,
            next_run=next_slot(item, now),
            last_run=store.last_run(item.slug, by_hand=True),
            last_edition=store.latest_edition(item.slug),
        )
        for item in lists
    ]


def shown_status(stored: EditionStatus, counts: dict[str, int]) -> EditionStatus:
    """An edition's status as its ledger has it, for `digest status`.

    The stored status changes only when a run starts or ends, so between runs it can lag the
    ledger: subscribers queued into a finished edition, or a run whose relay went away before
    it began. Paused stays paused until `digest resume`; open rows mean sending; an edition
    with a ledger and none open is done.
    """
    if stored == EditionStatus.PAUSED:
        return stored
    if any(counts.get(state) for state in OPEN_STATES):
        return EditionStatus.SENDING
    return EditionStatus.DONE if counts else stored
