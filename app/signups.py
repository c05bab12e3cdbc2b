"""Pending sign-ups: an account to be, made only when its address is confirmed.

Every sign-up, to a free address or to one that already has an account,
writes the same row and queues the same email; the sender decides what the
address gets (a confirmation link, or "someone tried to sign up with your
address"). Until the link is used, signing in with the username and
password says "confirm your address first" for both, so neither the sign-up
nor the sign-in tells anyone whether the address has an account. The
username is reserved while the row lives (until `expires`).
"""

from datetime import datetime, timedelta
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import tokens
from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.identity import canonical_username, password_matches
from app.models import User

PURPOSE = 'confirm_signup'  # of the emailed link's token
SESSION_KEY = 'pending_signup'  # its id, once signed in with (auth.login)


class PendingSignup(db.Model):
    __tablename__ = 'pending_signup'

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    username: so.Mapped[str] = so.mapped_column(sa.String(64))
    # Unique: one pending sign-up holds a name (User.username_key's form).
    username_key: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    # Not unique: several may name one address; the first confirmed wins.
    email: so.Mapped[str] = so.mapped_column(sa.String(254), index=True)
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(256))
    created: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    expires: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), index=True)
    # The browser's language at sign-up: the link's email and the account's.
    language: so.Mapped[str | None] = so.mapped_column(sa.String(16))

    def __repr__(self) -> str:
        return f'<PendingSignup {self.username}>'

    @classmethod
    def start(
        cls,
        username: str,
        email: str,
        password_hash: str,
        lifetime: int,
        language: str | None = None,
    ) -> Optional['PendingSignup']:
        """A new pending sign-up (flushed, so it has its id), or None if an
        account has the name; expired ones are removed first, which frees
        their names. Raises IntegrityError if another pending sign-up holds
        the name."""
        now = utcnow()
        db.session.execute(sa.delete(cls).where(cls.expires <= now))
        pending = cls(
            username=username,
            username_key=canonical_username(username),
            email=email,
            password_hash=password_hash,
            created=now,
            expires=now + timedelta(seconds=lifetime),
            language=language,
        )
        db.session.add(pending)
        db.session.flush()
        # Checked again after the insert: an account made from a sign-up
        # confirmed since the form's check has the name now.
        key = pending.username_key
        if db.session.scalar(sa.select(User.id).where(User.username_key == key)):
            db.session.rollback()
            return None
        return pending

    @staticmethod
    def live() -> sa.ColumnElement[bool]:
        return PendingSignup.expires > utcnow()

    @classmethod
    def by_username(cls, username: str) -> Optional['PendingSignup']:
        """The unexpired pending sign-up holding `username` (any case or width)."""
        key = canonical_username(username)
        query = sa.select(cls).where(cls.username_key == key, cls.live())
        return db.session.scalar(query)

    @classmethod
    def get_live(cls, id: int | None) -> Optional['PendingSignup']:
        if not isinstance(id, int):
            return None
        return db.session.scalar(sa.select(cls).where(cls.id == id, cls.live()))

    @classmethod
    def holds(cls, name: str) -> bool:
        """Whether an unexpired pending sign-up reserves `name`."""
        key = canonical_username(name)
        query = sa.select(cls.id).where(cls.username_key == key, cls.live())
        return db.session.scalar(query) is not None

    def check_password(self, password: str) -> bool:
        return password_matches(self.password_hash, password)

    def extend(self, lifetime: int) -> None:
        """A new link was asked for: it lives as long as the reservation."""
        self.expires = utcnow() + timedelta(seconds=lifetime)

    # The emailed link (app.tokens: signed, expiring, purpose-bound)

    def make_token(self, expires_in: int) -> str:
        return tokens.issue(self, PURPOSE, expires_in)

    @classmethod
    def from_token(cls, token: str) -> tuple:
        """(pending sign-up or None, reason, claims): see app.tokens.check."""
        return tokens.check(token, PURPOSE, cls.get_live)

    def create_account(self) -> User:
        """The account, its address confirmed by the link; this and every
        other pending sign-up for the address go (none could be confirmed
        now). The caller commits, and handles a unique-constraint conflict."""
        user = User(
            username=self.username,
            email=self.email,
            email_confirmed=True,
            password_hash=self.password_hash,
            language=self.language,
        )
        db.session.execute(
            sa.delete(PendingSignup).where(PendingSignup.email == self.email)
        )
        db.session.add(user)  # inserted at commit, where conflicts are caught
        return user
