"""Pending undos of email changes: one row per confirmed change, open for
UNDO_DAYS. While a row is open:

- the undo link sent to its old address puts that address back, whatever
  the account's address has become since (and ends the later rows);
- the account's address changes again only with the consent of the oldest
  open row's address (app.account.routes.change_email);
- its old address is reserved: no other account can sign up with it or
  move to it (app.validators.email_taken);
- "This was me", from the same notice, ends it: the owner keeps the new
  address and whoever else reads the old mailbox can no longer take the
  account back.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.models import User

UNDO_DAYS = 7


class EmailUndo(db.Model):
    __tablename__ = 'email_undo'

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey(User.id), index=True)
    old_email: so.Mapped[str] = so.mapped_column(sa.String(254), index=True)
    new_email: so.Mapped[str] = so.mapped_column(sa.String(254))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    ended_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # 'undone', 'kept' ("This was me") or 'superseded' (an earlier one was undone)
    outcome: so.Mapped[str | None] = so.mapped_column(sa.String(16))

    def __repr__(self) -> str:
        return f'<EmailUndo {self.id} of user {self.user_id}>'

    @staticmethod
    def is_open():
        return sa.and_(EmailUndo.ended_at.is_(None), EmailUndo.expires_at > utcnow())

    @classmethod
    def start(cls, user: User, old: str, new: str) -> 'EmailUndo':
        """Record a confirmed change (no commit; flushed for its id)."""
        row = cls(
            user_id=user.id,
            old_email=old,
            new_email=new,
            expires_at=utcnow() + timedelta(days=UNDO_DAYS),
        )
        db.session.add(row)
        db.session.flush()
        return row

    @classmethod
    def open_for(cls, user_id: int, undo_id) -> 'EmailUndo | None':
        if not isinstance(undo_id, int) or isinstance(undo_id, bool):
            return None
        return db.session.scalar(
            sa.select(cls).where(
                cls.id == undo_id, cls.user_id == user_id, cls.is_open()
            )
        )

    @classmethod
    def gate(cls, user_id: int) -> 'EmailUndo | None':
        """The oldest open row: its address must consent to another change."""
        return db.session.scalar(
            sa.select(cls)
            .where(cls.user_id == user_id, cls.is_open())
            .order_by(cls.created_at, cls.id)
            .limit(1)
        )

    @classmethod
    def reserved(cls, address: str, except_user: User | None = None) -> bool:
        """True if an open row holds `address` for another account."""
        query = sa.select(cls.id).where(cls.old_email == address, cls.is_open())
        if except_user is not None:
            query = query.where(cls.user_id != except_user.id)
        return db.session.scalar(query.limit(1)) is not None

    def end(self, outcome: str) -> bool:
        """Compare-and-set: of two racing uses of one link, one wins (no
        commit). Undoing also ends the account's later rows."""
        now = utcnow()
        result = db.session.execute(
            sa.update(EmailUndo)
            .where(EmailUndo.id == self.id, EmailUndo.is_open())
            .values(ended_at=now, outcome=outcome)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
        if outcome == 'undone':
            db.session.execute(
                sa.update(EmailUndo)
                .where(EmailUndo.user_id == self.user_id, EmailUndo.id > self.id)
                .where(EmailUndo.is_open())
                .values(ended_at=now, outcome='superseded')
                .execution_options(synchronize_session=False)
            )
        return True
