"""Milliseconds per section variant of the seeded daily edition (en and hu), message included.

On a fresh seeded SQLite database in a temp dir, the daily edition is drafted once; then for
1, 16 and 126 distinct (sections, language) choices, each variant's message is made from a
fresh `Variants` (so the one full inlining per language is counted in), and the time per
variant is printed. Nothing is asserted; the target is under 10 ms a variant.

    .venv/bin/python bench/variants.py
    .venv/bin/python bench/variants.py --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

from digest.operations.editions import Variants, draft_edition, unsaved_edition
from digest.operations.publisher import Publisher
from tests.conftest import NOW, settings_for

COUNTS = (1, 16, 126)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-variants-") as folder:
        settings = settings_for(Path(folder), 2525)
        publisher = Publisher(settings)
        publisher.init(seed=True, now=NOW)
        daily = settings.list("daily")
        draft = draft_edition(settings.site, publisher.store, publisher.renderer, daily, now=NOW)
        edition = unsaved_edition(draft, now=NOW)
        articles = publisher.store.articles_by_id(edition.article_ids)
        sections = sorted({article.section for article in articles})
        choices = [
            c for n in range(1, len(sections) + 1) for c in itertools.combinations(sections, n)
        ]
        keys = [(choice, language) for language in ("en", "hu") for choice in choices]
        row: dict[str, object] = {"label": "section variants: ms per variant"}
        for count in COUNTS:
            variants = Variants(settings.site, daily, publisher.store, publisher.renderer, edition)
            began = time.perf_counter()
            for choice, language in keys[:count]:
                variants.variant(list(choice), language)
            per = (time.perf_counter() - began) * 1000 / count
            row[f"{count} variants"] = per
            print(
                f"{count} variants: {per:.1f} ms per variant (one inlining per language included)"
            )
    if args.json:
        print("BENCH-JSON " + json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
