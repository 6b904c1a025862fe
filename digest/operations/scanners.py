"""Whether a person or a machine followed a counted link.

Link scanners (Microsoft Defender, Mimecast, ...) fetch every link of a mail within seconds
of delivery, and some only ask with HEAD. Such a click is recorded with `machine` set and a
reason, and left out of the totals:

    head     the request was HEAD (a person's browser sends GET)
    scanner  the User-Agent names a known scanner
    early    within the list's `machine_window` seconds of the delivery (per reader with
             per_subscriber tracking; otherwise of the edition's first delivery)
    burst    one reader's copy followed BURST_LINKS different links within BURST_SECONDS
             (per_subscriber tracking only: the earlier clicks of the burst are re-marked too)
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

BURST_LINKS = 3
BURST_SECONDS = 1.0
# Lower-case fragments of the User-Agents that security gateways and link checkers send.
SCANNER_AGENTS = (
    "bingpreview",
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "microsoft office",
    "ms-office",
    "symantec",
    "forcepoint",
    "trendmicro",
    "sophos",
    "zscaler",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "curl/",
    "wget/",
    "bot",
    "spider",
    "crawler",
    "scan",
)


def machine_reason(
    *,
    method: str,
    user_agent: str,
    clicked_at: datetime,
    delivered_at: datetime | None,
    window: float,
) -> str:
    """Why a click is a machine's ("" for a person's): HEAD, a scanner's agent, too early."""
    if method.upper() == "HEAD":
        return "head"
    agent = user_agent.casefold()
    if not agent or any(fragment in agent for fragment in SCANNER_AGENTS):
        return "scanner"
    if delivered_at is not None and clicked_at < delivered_at + timedelta(seconds=window):
        return "early"
    return ""


class BurstWatch:
    """Remembers each reader's clicks of the last second, to spot a copy that clicks everything."""

    def __init__(self) -> None:
        self._recent: dict[tuple[int, int], deque[tuple[datetime, str]]] = {}
        self._lock = threading.Lock()

    def burst_since(
        self, edition_id: int, subscriber_id: int, article_id: str, now: datetime, links: int
    ) -> datetime | None:
        """The burst's first moment if this click completes one, else None."""
        needed = max(2, min(BURST_LINKS, links))
        horizon = now - timedelta(seconds=BURST_SECONDS)
        with self._lock:
            recent = self._recent.setdefault((edition_id, subscriber_id), deque())
            recent.append((now, article_id))
            while recent and recent[0][0] < horizon:
                recent.popleft()
            if len({article for _, article in recent}) >= needed:
                return recent[0][0]
            if len(self._recent) > 100_000:  # bounded: forget readers who went quiet
                self._recent = {k: v for k, v in self._recent.items() if v[-1][0] >= horizon}
        return None
