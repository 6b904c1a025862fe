"""Smooth sending pace: at most `rate` messages a second, evenly spaced, and an hourly cap.

Spacing slots evenly (rather than a bucket that refills) means no bursts: a relay that allows
10 a second sees one message every 100 ms, which is what Gmail's guidance asks for.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class Pacer:
    """Hands out send slots; thread-safe. A rate or cap of 0 means unlimited."""

    def __init__(
        self,
        *,
        rate: float,
        hourly_cap: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.hourly_cap = hourly_cap
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        """Whether no rate or cap applies: a slot is never waited for."""
        return not self.interval and not self.hourly_cap

    def reserve(self) -> float:
        """Book the next slot and return how long the caller must wait for it."""
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            if self.hourly_cap:
                while self._recent and self._recent[0] <= start - 3600:
                    self._recent.popleft()
                if len(self._recent) >= self.hourly_cap:
                    start = max(start, self._recent[0] + 3600)
                    self._recent.popleft()
                self._recent.append(start)
            self._next = start + self.interval
            return start - now

    def wait(self) -> None:
        """Block until this caller's slot comes."""
        delay = self.reserve()
        if delay > 0:
            self.sleep(delay)
