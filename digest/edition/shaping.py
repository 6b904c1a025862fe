"""An editor's shape of a draft edition as pure changes: each returns a new `EditionShape`."""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence

from digest.errors import HeaderInjectionError, InvalidInputError
from digest.models import EditionShape

SUBJECT_LIMIT = 200  # characters: a subject line, which inboxes cut far sooner anyway


def checked_subject(value: str) -> str:
    """An editor's subject line, trimmed; refused if it could break the header or is empty."""
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError("the subject must be one line (no CR or LF)")
    subject = value.strip()
    if not subject:
        raise InvalidInputError("the subject is empty (to use the list's own, clear it)")
    if len(subject) > SUBJECT_LIMIT:
        raise InvalidInputError(
            f"the subject has {len(subject)} characters; at most {SUBJECT_LIMIT} fit"
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in subject):
        raise InvalidInputError("the subject contains a control character")
    return subject


def with_subject(shape: EditionShape, value: str | None) -> EditionShape:
    """The shape with the editor's subject (None or blank: the list's template again)."""
    subject = checked_subject(value) if value and value.strip() else None
    return dataclasses.replace(shape, subject=subject)


def pinned(shape: EditionShape, article_id: str | None) -> EditionShape:
    """The shape leading with the story that holds `article_id` (None: the usual lead)."""
    excluded = shape.excluded - {article_id} if article_id else shape.excluded
    return dataclasses.replace(shape, lead=article_id, excluded=excluded)


def excluded(shape: EditionShape, article_id: str, *, out: bool = True) -> EditionShape:
    """The shape leaving `article_id` out of this edition (`out=False`: taking it back)."""
    if not out:
        return dataclasses.replace(shape, excluded=shape.excluded - {article_id})
    lead = None if shape.lead == article_id else shape.lead
    return dataclasses.replace(shape, excluded=shape.excluded | {article_id}, lead=lead)


def moved(shape: EditionShape, shown: Sequence[str], name: str, step: int) -> EditionShape:
    """The shape with section `name` moved `step` places (-1 up, +1 down) in the order
    `shown` (the draft's sections as they stand); the whole order is kept from then on."""
    order = list(shown)
    if name not in order:
        raise InvalidInputError(f"the draft has no section {name!r}")
    at = order.index(name)
    to = min(max(at + step, 0), len(order) - 1)
    order.insert(to, order.pop(at))
    return dataclasses.replace(shape, section_order=tuple(order))
