"""Edition shapes: an editor's changes to a list's edition of one date, kept while a draft."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, insert, select

from digest.models import EditionShape
from digest.store.base import StoreBase
from digest.store.editions import refuse_made
from digest.store.schema import edition_shapes


class ShapeStore(StoreBase):
    """Edition shapes, one per list and edition date."""

    def set_shape(
        self, list_slug: str, edition_date: date, shape: EditionShape, *, now: datetime
    ) -> None:
        """Keep the shape of the list's edition of that date (an empty one removes it).

        Refused once that edition is made: the shape applies to the draft, and a made
        edition's copies are rendered and some may be sent.
        """
        with self._tx() as tx:
            list_id = self._list_id(tx, list_slug)
            refuse_made(tx, list_id, list_slug, edition_date, "its shape")
            key = (edition_shapes.c.list_id == list_id) & (
                edition_shapes.c.edition_date == edition_date
            )
            tx.execute(delete(edition_shapes).where(key))
            if shape:
                tx.execute(
                    insert(edition_shapes).values(
                        list_id=list_id,
                        edition_date=edition_date,
                        lead_article_id=shape.lead,
                        excluded_ids=sorted(shape.excluded),
                        section_order=list(shape.section_order),
                        subject=shape.subject,
                        updated_at=now,
                    )
                )

    def edition_shape(self, list_slug: str, edition_date: date) -> EditionShape:
        """The shape of the list's edition of that date; an empty one if none was set."""
        with self._tx(read_only=True) as tx:
            list_id = self._list_id(tx, list_slug)
            row = (
                tx.execute(
                    select(edition_shapes).where(
                        edition_shapes.c.list_id == list_id,
                        edition_shapes.c.edition_date == edition_date,
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return EditionShape()
        return EditionShape(
            lead=row["lead_article_id"],
            excluded=frozenset(row["excluded_ids"]),
            section_order=tuple(row["section_order"]),
            subject=row["subject"],
        )
