"""Section variants without inlining each: the HTML body as a row of pieces, cut and joined.

The HTML template renders its body as a sequence of pieces (the lead, a section heading, a
card, the "In brief" heading, a brief item), each opened by a marker comment. Every piece
depends only on its own article or section, and premailer's rules are plain class selectors,
so a piece inlines the same wherever it stands. A *library* render holds every form of every
piece of an edition, plus the frame around them with marker words standing for the texts that
depend on the choice (subject, preheader, intro); premailer runs on it once per language.
A variant is then the frame with those words filled in and its pieces joined in its order:
string work only. `tests/edition/test_variants.py` proves it byte-identical to inlining the
variant's own render, for the templates we ship.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from digest.edition.selection import Selection
from digest.edition.stories import Story
from digest.errors import RenderError

# Longest first: the pattern must not take "subject" out of "subjectattr".
VARIABLE_TEXTS = ("subjectattr", "subject", "preheader", "intro")


class Kind(StrEnum):
    """The forms a piece of the body takes."""

    LEAD = "lead"
    SECTION = "section"
    CARD = "card"
    BRIEF_HEAD = "briefhead"
    BRIEF = "brief"
    END = "end"


@dataclass(frozen=True, slots=True)
class Piece:
    """One row of the body: its form, and the article or section name it shows."""

    kind: Kind
    story: Story | None = None
    section: str = ""

    @property
    def key(self) -> str:
        """Names the piece in markers: a digest of the story's article ids or the section name,
        so no feed text ever stands inside an HTML comment."""
        name = " ".join(a.id for a in self.story.articles) if self.story else self.section
        return f"{self.kind}:{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def layout(selection: Selection, *, max_cards: int | None) -> list[Piece]:
    """The body of one copy: the lead, then up to `max_cards` story cards under their section
    headings, then the rest as headline-only "In brief" items (in reading order)."""
    pieces = [Piece(Kind.LEAD, selection.lead)] if selection.lead else []
    brief: list[Story] = []
    cards = 0
    for group in selection.sections:
        shown = []
        for story in group.stories:
            if max_cards is None or cards < max_cards:
                shown.append(story)
                cards += 1
            else:
                brief.append(story)
        if shown:
            pieces.append(Piece(Kind.SECTION, section=group.name))
            pieces += [Piece(Kind.CARD, story) for story in shown]
    if brief:
        pieces.append(Piece(Kind.BRIEF_HEAD))
        pieces += [Piece(Kind.BRIEF, story) for story in brief]
    return [*pieces, Piece(Kind.END)]


def library(stories: Sequence[Story]) -> list[Piece]:
    """Every piece any variant of an edition with these stories can hold."""
    sections = dict.fromkeys(story.main.section for story in stories)
    return [
        *(Piece(Kind.LEAD, story) for story in stories),
        *(Piece(Kind.SECTION, section=name) for name in sections),
        *(Piece(Kind.CARD, story) for story in stories),
        Piece(Kind.BRIEF_HEAD),
        *(Piece(Kind.BRIEF, story) for story in stories),
        Piece(Kind.END),
    ]


def piece_marker(nonce: str, piece: Piece) -> str:
    """The comment that opens a piece in the rendered HTML."""
    return f"<!--xdigestpiece{nonce}:{piece.key}-->"


def text_marker(nonce: str, name: str) -> str:
    """Stands for a variable text in the library render; letters and digits only."""
    return f"xdigestvar{nonce}{name}"


def strip_markers(document: str, nonce: str) -> str:
    """The document without its piece markers: what is stored and sent."""
    return re.sub(f"<!--xdigestpiece{re.escape(nonce)}:[a-z]+:[0-9a-f]+-->", "", document)


class InlinedLibrary:
    """An edition's inlined library in one language: the frame and every piece, ready to join."""

    def __init__(self, inlined: str, nonce: str) -> None:
        self.nonce = nonce
        parts = re.split(f"<!--xdigestpiece{re.escape(nonce)}:([a-z]+:[0-9a-f]+)-->", inlined)
        self.head = parts[0]
        self.pieces = dict(zip(parts[1::2], parts[2::2], strict=True))
        end = Piece(Kind.END).key
        if end not in self.pieces:
            raise RenderError("the HTML template lost its piece markers while inlining")
        self.tail = self.pieces.pop(end)
        self._text = re.compile(f"xdigestvar{re.escape(nonce)}({'|'.join(VARIABLE_TEXTS)})")

    def join(self, pieces: Sequence[Piece], texts: dict[str, str]) -> str:
        """The inlined HTML of a copy holding `pieces`; `texts` already serialised as
        premailer writes them (see `serialised`)."""
        try:
            body = "".join(self.pieces[piece.key] for piece in pieces if piece.kind != Kind.END)
        except KeyError as exc:
            raise RenderError(f"piece {exc} is not in the edition's library") from exc
        frame = self.head + "\x00" + self.tail
        frame = self._text.sub(lambda match: texts[match.group(1)], frame)
        return frame.replace("\x00", body, 1)


def serialised(value: str) -> tuple[str, str]:
    """`value` as premailer's serialiser (lxml, HTML method) writes it: as text, as attribute.

    Computed by lxml itself, so the variant holds the same bytes a direct inlining would.
    """
    from lxml import etree
    from lxml import html as lxml_html
    from markupsafe import escape

    escaped = str(escape(value))
    document = lxml_html.document_fromstring(
        f'<html><body><p title="{escaped}">{escaped}</p></body></html>'
    )
    out = etree.tostring(document, method="html", encoding="unicode")
    found = re.search(r'<p title="(.*)">(.*)</p>', out, re.S)
    if found is None:
        raise RenderError(f"cannot serialise {value[:40]!r} as the inliner would")
    return found.group(2), found.group(1)
