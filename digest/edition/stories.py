"""Stories: articles about the same news grouped into one card, pure and deterministic.

A site publishes one story several times (a rewrite, a follow-up, the wire copy). Two articles
belong together when the cosine similarity of their character n-gram TF-IDF vectors (title
and summary) reaches the threshold. Groups grow from the strongest pairs down, and two groups
join only when their members are alike on average (average linkage): A~B and B~C put all
three on one card only if A and C are not strangers, so weak links never chain into one card.

Character n-grams of each word, rather than whole words, match "defence" with "defense" and
an inflected Hungarian word with its stem, with no stemmer or model to load. The weights come
from the candidates themselves, so a word every article shares ("EU" on an EU desk) counts for
little. Pairs are found through an inverted index of the rarer n-grams, so the cost follows the
overlap between articles, not the square of their number.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.models import Article

GRAM = 4
# An n-gram in more than this share of the candidates (and more than COMMON_FLOOR of them) is
# too common to suggest a pair by itself; it still counts in the cosine of a pair that rarer
# n-grams suggested. Below the floor every pair is cheap enough to look at.
COMMON_SHARE = 0.04
COMMON_FLOOR = 20

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


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    if not folded.isascii():
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    plain = _POSSESSIVE.sub("", folded)  # "Trump's" is "Trump"
    return [word for word in _WORD.findall(plain) if word not in _STOPWORDS]


def _vectors(articles: Sequence[Article]) -> tuple[list[dict[str, float]], Counter[str]]:
    """Unit-length TF-IDF vectors (sublinear tf, smoothed idf over the candidates), and each
    n-gram's document frequency.

    A vector keeps only the n-grams it shares with another candidate: most n-grams occur in one
    article alone, and they add to its length but never to a cosine.
    """
    grams_of: dict[str, list[str]] = {}  # a word's n-grams, made once per distinct word
    counts: list[Counter[str]] = []
    for article in articles:
        grams: list[str] = []
        for word in _words(f"{article.title} {article.summary}"):
            found = grams_of.get(word)
            if found is None:
                padded = f" {word} "
                found = [padded[k : k + GRAM] for k in range(max(1, len(padded) - GRAM + 1))]
                grams_of[word] = found
            grams += found
        counts.append(Counter(grams))
    df: Counter[str] = Counter()
    for counted in counts:
        df.update(counted.keys())
    n = len(articles)
    # The idf depends on the document frequency alone: one logarithm per distinct frequency.
    idf = {d: math.log((1 + n) / (1 + d)) + 1.0 for d in set(df.values())}
    vectors = []
    for counted in counts:
        weighted = {
            g: idf[df[g]] if tf == 1 else (1.0 + math.log(tf)) * idf[df[g]]
            for g, tf in counted.items()
        }
        norm = math.sqrt(sum(w * w for w in weighted.values())) or 1.0
        vectors.append({g: w / norm for g, w in weighted.items() if df[g] > 1})
    return vectors, df


def _pairs(
    vectors: list[dict[str, float]], df: Counter[str], threshold: float
) -> list[tuple[float, int, int]]:
    """(cosine, i, j) for every pair at or above `threshold` that shares a rarer n-gram, i < j,
    strongest first.

    The rarer n-grams' part of each dot product is summed through an inverted index; the
    common n-grams' part is at most the product of the two vectors' common norms
    (Cauchy-Schwarz), so only a pair whose bound reaches the threshold gets a full cosine.
    """
    common = max(COMMON_FLOOR, int(len(vectors) * COMMON_SHARE))
    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    rest: list[float] = []
    found = []
    for i, vector in enumerate(vectors):
        rare = []
        squares = 0.0
        for gram, weight in vector.items():
            if df[gram] > common:
                squares += weight * weight
            else:
                rare.append((gram, weight))
        rest.append(math.sqrt(squares))
        partial: dict[int, float] = defaultdict(float)
        for gram, weight in rare:
            for j, other in postings[gram]:
                partial[j] += weight * other
        for j, rare_part in partial.items():
            bound = rest[i] * rest[j]
            if rare_part + bound < threshold:
                continue
            score = _cosine(vector, vectors[j]) if bound else rare_part
            if score >= threshold:
                found.append((score, j, i))
        for gram, weight in rare:
            postings[gram].append((i, weight))
    return sorted(found, key=lambda pair: (-pair[0], pair[1], pair[2]))


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
    vectors, df = _vectors(articles)
    owner = list(range(len(articles)))  # each article's group, named by its first member
    groups: dict[int, list[int]] = {index: [index] for index in range(len(articles))}
    # Strongest pairs first; two groups join only if their members are alike on average,
    # so a chain of weak links (Trump ~ Ukraine ~ Scholz) never builds one giant card.
    for _, i, j in _pairs(vectors, df, threshold):
        a, b = owner[i], owner[j]
        if a == b:
            continue
        cross = [_cosine(vectors[x], vectors[y]) for x in groups[a] for y in groups[b]]
        if sum(cross) / len(cross) >= threshold:
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


def _cosine(left: dict[str, float], right: dict[str, float]) -> float:
    small, large = (left, right) if len(left) <= len(right) else (right, left)
    return sum(weight * large.get(gram, 0.0) for gram, weight in small.items())
