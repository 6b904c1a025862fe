"""The pacer spaces sends evenly and honours the hourly cap, on a controlled clock."""

from __future__ import annotations

from itertools import pairwise

import pytest

from digest.mail.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("rate", "expected_span"), [(10, 0.9), (2, 4.5)], ids=["10-per-s", "2-per-s"]
)
def test_even_spacing_without_bursts(rate: float, expected_span: float) -> None:
    clock = Clock()
    pacer = Pacer(rate=rate, hourly_cap=0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(10):
        pacer.wait()
        times.append(clock.now)
    gaps = [b - a for a, b in pairwise(times)]
    assert all(gap == pytest.approx(1 / rate) for gap in gaps)
    assert times[-1] - times[0] == pytest.approx(expected_span)


def test_unlimited_never_waits() -> None:
    clock = Clock()
    pacer = Pacer(rate=0, hourly_cap=0, clock=clock, sleep=clock.sleep)
    assert [pacer.reserve() for _ in range(1000)] == [0.0] * 1000


def test_hourly_cap_holds_the_next_message_for_the_next_hour() -> None:
    clock = Clock()
    pacer = Pacer(rate=0, hourly_cap=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        pacer.wait()
    assert clock.now == 1000.0
    pacer.wait()
    assert clock.now == pytest.approx(4600.0)
