"""Editors: the desk's accounts, their failed sign-ins and their session epoch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from digest.errors import InvalidInputError, NotFoundError, StoreError
from digest.store.base import StoreBase
from digest.store.schema import editors


@dataclass(frozen=True, slots=True)
class Editor:
    """One desk account as stored."""

    id: int
    email: str
    password_hash: str
    failed_sign_ins: int
    locked_until: datetime | None
    session_epoch: int
    last_sign_in_at: datetime | None


class EditorStore(StoreBase):
    """Editors' rows; the sign-in rules live in `digest.operations.editors`."""

    def add_editor(self, email: str, password_hash: str, *, now: datetime) -> int:
        """A new editor; raises InvalidInputError if the address is taken."""
        try:
            with self._tx() as tx:
                return int(
                    tx.execute(
                        insert(editors)
                        .values(
                            email=email,
                            email_key=email.lower(),
                            password_hash=password_hash,
                            created_at=now,
                        )
                        .returning(editors.c.id)
                    ).scalar_one()
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise InvalidInputError(f"{email} is already an editor") from exc
            raise

    def editor_by_email(self, email: str) -> Editor | None:
        """The editor with this address (any case), if there is one."""
        with self._tx(read_only=True) as tx:
            row = tx.execute(select(editors).where(editors.c.email_key == email.lower())).first()
        return None if row is None else _editor(row)

    def editor_by_id(self, editor_id: int) -> Editor | None:
        """The editor with this id, if there still is one."""
        with self._tx(read_only=True) as tx:
            row = tx.execute(select(editors).where(editors.c.id == editor_id)).first()
        return None if row is None else _editor(row)

    def all_editors(self) -> list[Editor]:
        """Every editor, by address."""
        with self._tx(read_only=True) as tx:
            rows = tx.execute(select(editors).order_by(editors.c.email_key)).all()
        return [_editor(row) for row in rows]

    def remove_editor(self, email: str) -> None:
        """Delete the account; its sessions end with it."""
        with self._tx() as tx:
            gone = tx.execute(delete(editors).where(editors.c.email_key == email.lower()))
            if not gone.rowcount:
                raise NotFoundError(f"{email} is not an editor")

    def record_failed_sign_in(
        self, editor_id: int, *, failures: int, lock_until: datetime | None
    ) -> None:
        """Store the failures in a row so far, and the lock they earned (None: unlocked)."""
        with self._tx() as tx:
            tx.execute(
                update(editors)
                .where(editors.c.id == editor_id)
                .values(failed_sign_ins=failures, locked_until=lock_until)
            )

    def record_sign_in(self, editor_id: int, *, now: datetime, password_hash: str | None) -> None:
        """A good sign-in: failures forgotten, the lock lifted, a re-hashed password kept."""
        values: dict[str, object] = {
            "failed_sign_ins": 0,
            "locked_until": None,
            "last_sign_in_at": now,
        }
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self._tx() as tx:
            tx.execute(update(editors).where(editors.c.id == editor_id).values(**values))

    def end_sessions(self, editor_id: int) -> None:
        """Sign the editor out everywhere: cookies carry the epoch they were issued in."""
        with self._tx() as tx:
            tx.execute(
                update(editors)
                .where(editors.c.id == editor_id)
                .values(session_epoch=editors.c.session_epoch + 1)
            )

    def set_password_hash(self, editor_id: int, password_hash: str) -> None:
        """A new password; every session ends and the lock is lifted."""
        with self._tx() as tx:
            tx.execute(
                update(editors)
                .where(editors.c.id == editor_id)
                .values(
                    password_hash=password_hash,
                    failed_sign_ins=0,
                    locked_until=None,
                    session_epoch=editors.c.session_epoch + 1,
                )
            )


def _editor(row: object) -> Editor:
    mapping = row._mapping  # type: ignore[attr-defined]
    return Editor(
        id=mapping["id"],
        email=mapping["email"],
        password_hash=mapping["password_hash"],
        failed_sign_ins=mapping["failed_sign_ins"],
        locked_until=mapping["locked_until"],
        session_epoch=mapping["session_epoch"],
        last_sign_in_at=mapping["last_sign_in_at"],
    )
