"""ms per section variant of the seeded daily edition (en, hu): python bench/variants.py TMPDIR"""

import itertools
import sys
import time
from pathlib import Path

from digest.operations.editions import Variants, draft_edition, unsaved_edition
from digest.operations.publisher import Publisher
from tests.conftest import NOW, settings_for

tmp = Path(sys.argv[1])
tmp.mkdir(exist_ok=True)
s = settings_for(tmp, 2525)
p = Publisher(s)
p.init(seed=True, now=NOW)
ml = s.list("daily")
d = draft_edition(s.site, p.store, p.renderer, ml, now=NOW)
e = unsaved_edition(d, now=NOW)
arts = p.store.articles_by_id(e.article_ids)
secs = sorted({a.section for a in arts})
combos = [c for r in range(1, len(secs) + 1) for c in itertools.combinations(secs, r)]
keys = [(c, l) for l in ("en", "hu") for c in combos]
for n in (1, 16, 126):
    v = Variants(s.site, ml, p.store, p.renderer, e)
    v.variant([secs[0]], "en")  # library once
    t = time.perf_counter()
    for c, l in keys[:n]:
        v.variant(list(c), l if n > 1 else "en")
    print(
        f"{n} variants: {(time.perf_counter() - t) * 1000 / n:.1f} ms/variant (incl. MessageTemplate)"
    )
