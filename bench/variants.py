"""Milliseconds per section variant of the seeded daily edition (en and hu), message included.

python bench/variants.py /tmp/bench-variants
"""

import itertools
import sys
import time
from pathlib import Path

from digest.operations.editions import Variants, draft_edition, unsaved_edition
from digest.operations.publisher import Publisher
from tests.conftest import NOW, settings_for

folder = Path(sys.argv[1])
folder.mkdir(exist_ok=True)
settings = settings_for(folder, 2525)
publisher = Publisher(settings)
publisher.init(seed=True, now=NOW)
daily = settings.list("daily")
draft = draft_edition(settings.site, publisher.store, publisher.renderer, daily, now=NOW)
edition = unsaved_edition(draft, now=NOW)
articles = publisher.store.articles_by_id(edition.article_ids)
sections = sorted({article.section for article in articles})
choices = [c for n in range(1, len(sections) + 1) for c in itertools.combinations(sections, n)]
keys = [(choice, language) for language in ("en", "hu") for choice in choices]
for count in (1, 16, 126):
    variants = Variants(settings.site, daily, publisher.store, publisher.renderer, edition)
    began = time.perf_counter()
    for choice, language in keys[:count]:
        variants.variant(list(choice), language)
    per = (time.perf_counter() - began) * 1000 / count
    print(f"{count} variants: {per:.1f} ms per variant (one inlining per language included)")
