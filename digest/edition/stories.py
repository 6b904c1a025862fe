"""Stories: articles about the same news grouped into one card, pure and deterministic.

A site publishes one story several times (a rewrite, a follow-up, the wire copy). Two articles
belong together when the cosine similarity of their character n-gram TF-IDF vectors (title
and summary) reaches the threshold. Groups grow from the strongest pairs down, and two groups
join only when their members are alike on average (average linkage): A~B and B~C put all
three on one card only if A and C are not strangers, so weak links never chain into one card.

Character n-grams of each word, rather than whole words, match "defence" with "defense" and
an inflected Hungarian word with its stem, with no stemmer or model to load. The weights come
from the candidates themselves, so a word every article shares ("EU" on an EU desk) counts for
little. The cosines are array products (numpy): the few common n-grams as one dense product, the
rarer ones summed over each n-gram's postings, so 500 candidates take tens of milliseconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from digest.models import Article

GRAM = 4
# An n-gram in more than this share of the candidates (and more than COMMON_FLOOR of them) is
# too common to suggest a pair by itself; it still counts in the cosine of a pair that rarer
# n-grams suggested. Below the floor every pair is cheap enough to look at.
COMMON_SHARE = 0.04
COMMON_FLOOR = 20

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_WORD = re.compile(r"\w+")
_POSSESSIVE = re.compile(r"['’]s\b")
_STOPWORDS = frozenset(
    # English and Hungarian function words, accents removed as `_words` removes them.
    (
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "into",
        "is", "it", "its", "of", "on", "or", "over", "than", "that", "the", "their", "this", "to",
        "was", "were", "will", "with", "after", "before", "amid", "about", "says", "said", "new",
        "not", "no", "did", "do", "does", "his", "her", "he", "she", "they", "we", "you", "who",
        "what", "how", "why", "but", "up", "out", "all", "can", "could", "would", "should",
        "may", "been", "had", "which", "when", "where", "while", "during", "under", "between",
        "through", "more", "most", "also",
        "az", "es", "hogy", "egy", "nem", "is", "de", "meg", "mar", "csak", "mint", "vagy", "ha",
        "el", "ki", "be", "fel", "le", "utan", "szerint",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Story:
    """One card: the article shown in full, then the other articles about the same news."""

    main: Article
    also: tuple[Article, ...] = ()

    @property
    def articles(self) -> tuple[Article, ...]:
        """The representative first, then the others."""
        return (self.main, *self.also)


class _Unaccented(dict[int, int | None]):
    """str.translate's table that drops combining marks, filled in as characters are met."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        self[code] = kept
        return kept


_UNACCENTED = _Unaccented()


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    if not folded.isascii():
        folded = folded.translate(_UNACCENTED)
    plain = _POSSESSIVE.sub("", folded)  # "Trump's" is "Trump"
    return [word for word in _WORD.findall(plain) if word not in _STOPWORDS]


def _weights(articles: Sequence[Article]) -> tuple[Ints, Ints, Floats, Ints]:
    """Unit-length TF-IDF vectors (sublinear tf, smoothed idf over the candidates) as parallel
    arrays: article, n-gram id and weight, for the n-grams shared with another candidate only;
    and each n-gram id's document frequency.

    Most n-grams occur in one article alone: they add to its length but never to a cosine.
    """
    words = [_words(f"{article.title} {article.summary}") for article in articles]
    n = len(articles)
    # Every word with a space either side, all in one array of code points; a word's n-grams
    # are the windows of GRAM code points inside it (a one-letter word: one shorter n-gram).
    flat = [f" {word} " for each in words for word in each]
    codes = np.frombuffer(("".join(flat) + "\0" * GRAM).encode("utf-32-le"), dtype=np.uint32)
    sizes = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
    windows = np.maximum(1, sizes - GRAM + 1)
    first = np.repeat(np.cumsum(sizes) - sizes, windows)
    first += np.arange(len(first)) - np.repeat(np.cumsum(windows) - windows, windows)
    # Each code point as its rank among those used (0: none), an n-gram as one integer of ranks.
    used = np.zeros(int(codes.max()) + 1, dtype=np.int64)
    used[codes] = 1
    ranks = np.cumsum(used) - 1
    grams = ranks[codes[first[:, None] + np.arange(GRAM)]]
    grams[np.repeat(sizes < GRAM, windows), GRAM - 1] = 0
    bits = int(ranks[-1] + 1).bit_length()
    if bits * GRAM < 63:
        _, ids = np.unique(grams @ (1 << (bits * np.arange(GRAM - 1, -1, -1))), return_inverse=True)
    else:  # tens of thousands of distinct characters: n-grams compared as raw bytes
        _, ids = np.unique(grams.view(f"V{8 * GRAM}"), return_inverse=True)
    size = max(1, int(ids.max(initial=0)) + 1)
    per_article = np.fromiter(map(len, words), dtype=np.int64, count=n)
    rows = np.repeat(np.repeat(np.arange(n, dtype=np.int64), per_article), windows)
    keys, tf = np.unique(rows * size + ids.ravel(), return_counts=True)
    rows, grams = np.divmod(keys, size)
    df = np.bincount(grams, minlength=size)
    weights = (1.0 + np.log(tf)) * (np.log((1 + n) / (1 + df[grams])) + 1.0)
    norms = np.sqrt(np.bincount(rows, weights * weights, minlength=n))
    weights /= np.where(norms > 0, norms, 1.0)[rows]
    shared = df[grams] > 1
    return rows[shared], grams[shared], weights[shared], df


def _similarities(articles: Sequence[Article]) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Every pair's cosine, and which pairs share a rarer n-gram (those alone may be a pair).

    The common n-grams' part is one dense product of a narrow matrix; the rarer n-grams' part is
    summed over the pairs of articles in each n-gram's short postings list.
    """
    n = len(articles)
    rows, grams, weights, df = _weights(articles)
    common = max(COMMON_FLOOR, int(n * COMMON_SHARE))
    wide = df[grams] > common
    _, dense_column = np.unique(grams[wide], return_inverse=True)
    matrix = np.zeros((n, int(dense_column.max(initial=-1)) + 1))
    matrix[rows[wide], dense_column] = weights[wide]
    scores = matrix @ matrix.T
    cells: list[Ints] = []
    products: list[Floats] = []
    # Each rarer n-gram's postings, by document frequency: a block of equal-length lists.
    order = np.lexsort((rows, grams))
    frequency = df[grams[order]]
    for d in range(2, common + 1):
        picked = order[frequency == d]
        if len(picked):
            members = rows[picked].reshape(-1, d)
            shares = weights[picked].reshape(-1, d)
            first, second = np.triu_indices(d, 1)
            cells.append((members[:, first] * n + members[:, second]).ravel())
            products.append((shares[:, first] * shares[:, second]).ravel())
    cell = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
    # Every weight is positive, so a pair shares a rarer n-gram exactly when its part is.
    upper = np.bincount(cell, np.concatenate(products) if products else None, n * n).reshape(n, n)
    scores += upper + upper.T
    return scores, upper > 0


def _pairs(
    scores: Floats, linked: npt.NDArray[np.bool_], threshold: float
) -> list[tuple[int, int]]:
    """(i, j), i < j, for every pair that shares a rarer n-gram and reaches `threshold`,
    strongest first."""
    first, second = np.nonzero(linked & (scores >= threshold))
    strength = scores[first, second]
    order = np.lexsort((second, first, -strength))
    return list(zip(first[order].tolist(), second[order].tolist(), strict=True))


def _completeness(article: Article) -> int:
    return sum(
        (bool(article.image_url), bool(article.author), bool(article.summary), bool(article.body))
    )


def _rank(article: Article) -> tuple[bool, int, int, datetime, str]:
    """Best representative first: the site's lead flag, then the most complete, then newest."""
    body = sum(len(block.text) for block in article.body)
    return (article.lead, _completeness(article), body, article.published_at, article.id)


def group_stories(articles: Sequence[Article], *, threshold: float) -> list[Story]:
    """The articles grouped into stories, in the order of each story's first article given.

    Within a story the representative comes first, the others follow newest first.
    """
    scores, linked = _similarities(articles)
    owner = list(range(len(articles)))  # each article's group, named by its first member
    groups: dict[int, list[int]] = {index: [index] for index in range(len(articles))}
    # Strongest pairs first; two groups join only if their members are alike on average,
    # so a chain of weak links (Trump ~ Ukraine ~ Scholz) never builds one giant card.
    for i, j in _pairs(scores, linked, threshold):
        a, b = owner[i], owner[j]
        if a == b:
            continue
        cross = scores[np.ix_(groups[a], groups[b])]
        if cross.mean() >= threshold:
            keep, gone = min(a, b), max(a, b)
            for index in groups[gone]:
                owner[index] = keep
            groups[keep] += groups.pop(gone)
    stories = []
    for indexes in sorted(groups.values()):
        group = [articles[index] for index in sorted(indexes)]
        best = max(group, key=_rank)
        rest = sorted(
            (a for a in group if a is not best),
            key=lambda a: (a.published_at, a.id),
            reverse=True,
        )
        stories.append(Story(main=best, also=tuple(rest)))
    return stories
