"""Names a rename released: held for their former owner for a while
(USERNAME_HOLD_DAYS), so nobody can take over a name people still know
and link to."""

from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.models import User


class ReleasedUsername(db.Model):
    __tablename__ = 'released_username'

    # The canonical form (User.username_key) of the name given up.
    username_key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey(User.id, ondelete='CASCADE'), index=True
    )
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f'<ReleasedUsername {self.username_key} of user {self.user_id}>'


def held_for_another(key: str, user: User | None = None) -> bool:
    """Is the canonical name `key` held for an account other than `user`?"""
    query = sa.select(ReleasedUsername.user_id).where(
        ReleasedUsername.username_key == key, ReleasedUsername.expires_at > utcnow()
    )
    if user is not None:
        query = query.where(ReleasedUsername.user_id != user.id)
    return db.session.scalar(query) is not None


def release(user: User, old_key: str) -> None:
    """After a rename (no commit): hold the old name for its owner; a name
    the owner takes back is no longer held."""
    days = current_app.config['USERNAME_HOLD_DAYS']
    # Not flushing the rename here: a lost race must surface at the commit,
    # where the caller turns it into a form error.
    with db.session.no_autoflush:
        db.session.execute(
            sa.delete(ReleasedUsername).where(
                ReleasedUsername.username_key.in_([old_key, user.username_key])
            )
        )
    if days > 0:
        db.session.add(
            ReleasedUsername(
                username_key=old_key,
                user_id=user.id,
                expires_at=utcnow() + timedelta(days=days),
            )
        )
