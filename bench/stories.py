"""How long story grouping takes for an edition's candidates (the target: under 50 ms for 500).

The candidates are the 53 seed articles, then made-up ones until there are `--count`: titles of
8-14 and summaries of 18-30 words, half drawn (with a fixed seed) from every word of the seed
titles and summaries, so common words keep the frequencies real headlines give them, and half
made-up words standing for the names and terms that make a week of news a large vocabulary.
`--closed` draws every word from the seeds: a worst case where all articles share a small
vocabulary. Grouping runs `--runs` times; the median and fastest are printed, with the number
of stories found, and the fastest run's CPU time (process_time: what the grouping used of the
cores, without the time it waited for one). The machine is shared: the fastest run and the CPU
time are the best estimates, and `--against
REV` times the grouping of that git revision in the same process, runs interleaved, so the
ratio holds however busy the machine is.

    .venv/bin/python bench/stories.py
    .venv/bin/python bench/stories.py --count 1000 --runs 21
    .venv/bin/python bench/stories.py --against fee79db
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.config import ListSettings
from digest.edition.stories import group_stories
from digest.intake.articles import article_from_record
from digest.models import Article

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 2, 6, tzinfo=UTC)


def candidates(count: int, *, closed: bool = False) -> list[Article]:
    """The seed articles, then made-up ones from their words, `count` in all."""
    records = json.loads((ROOT / "seeds" / "articles.json").read_text(encoding="utf-8"))
    seeds = [article_from_record(record, now=NOW) for record in records]
    words = [word for a in seeds for word in f"{a.title} {a.summary}".split()]
    pick = random.Random(15)

    def words_of(k: int) -> str:
        drawn = pick.choices(words, k=k)
        if not closed:
            drawn = [
                word
                if pick.random() < 0.5
                else "".join(pick.choices(string.ascii_lowercase, k=pick.randint(4, 10)))
                for word in drawn
            ]
        return " ".join(drawn)

    made = list(seeds[:count])
    while len(made) < count:
        number = len(made)
        made.append(
            replace(
                seeds[number % len(seeds)],
                id=f"made-{number}",
                title=words_of(pick.randint(8, 14)),
                summary=words_of(pick.randint(18, 30)),
                url=f"https://budapestpost.example/made/{number}",
                published_at=NOW - timedelta(minutes=number),
                lead=False,
            )
        )
    return made


Grouper = Callable[..., Sequence[object]]


def grouping_at(revision: str) -> Grouper:
    """`group_stories` as the module was at a git revision, loaded beside today's."""
    source = subprocess.run(
        ["git", "show", f"{revision}:digest/edition/stories.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("stories_then", handle.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stories_then"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    Path(handle.name).unlink()
    grouper: Grouper = module.group_stories
    return grouper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--closed", action="store_true", help="every word from the seeds")
    parser.add_argument("--against", metavar="REV", help="also time this git revision's grouping")
    args = parser.parse_args()
    articles = candidates(args.count, closed=args.closed)
    threshold = ListSettings.model_fields["story_threshold"].default
    then = grouping_at(args.against) if args.against else None
    times: list[float] = []
    cpu: list[float] = []
    times_then: list[float] = []
    cpu_then: list[float] = []
    for _ in range(args.runs):
        start, used = time.perf_counter(), time.process_time()
        stories = group_stories(articles, threshold=threshold)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - used) * 1000)
        if then is not None:
            start, used = time.perf_counter(), time.process_time()
            stories_then = then(articles, threshold=threshold)
            times_then.append((time.perf_counter() - start) * 1000)
            cpu_then.append((time.process_time() - used) * 1000)
    grouped = sum(1 for story in stories if story.also)
    print(
        f"{len(articles)} candidates -> {len(stories)} stories ({grouped} with Also: links): "
        f"median {statistics.median(times):.1f} ms, fastest {min(times):.1f} ms (target 50 ms); "
        f"CPU {min(cpu):.1f} ms (all threads: numpy's BLAS may use every core)"
    )
    if then is not None:
        same = [[a.id for a in s.articles] for s in stories] == [
            [a.id for a in s.articles]  # type: ignore[attr-defined]
            for s in stories_then
        ]
        print(
            f"{args.against}: median {statistics.median(times_then):.1f} ms, fastest "
            f"{min(times_then):.1f} ms, CPU {min(cpu_then):.1f} ms; "
            f"{min(times_then) / min(times):.1f} times as long; "
            f"same stories: {same}"
        )


if __name__ == "__main__":
    main()
