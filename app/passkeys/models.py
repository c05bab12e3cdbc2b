"""An account's passkeys and the server side of each WebAuthn ceremony.

- Passkey: one credential (its id, public key as COSE, sign counter and
  backup flags); `user_handle` is the random WebAuthn user id, the same
  for every passkey of an account and never its database id.
- Ceremony: one challenge, tied to one browser by a random token in its
  session cookie (only its digest is stored), for one purpose (and one
  account, when it is known), used once and within CEREMONY_SECONDS.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import session

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.models import User

CEREMONY_SECONDS = 300
SESSION_KEY = 'passkey_ceremony'
MAX_PASSKEYS = 20


class Passkey(db.Model):
    __tablename__ = 'passkey'

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey(User.id, ondelete='CASCADE'), index=True
    )
    credential_id: so.Mapped[bytes] = so.mapped_column(
        sa.LargeBinary(1023), unique=True
    )
    user_handle: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary(64))
    public_key: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary(2048))
    # 32 bits unsigned in the protocol: more than an int4 holds.
    sign_count: so.Mapped[int] = so.mapped_column(sa.BigInteger(), default=0)
    backup_eligible: so.Mapped[bool] = so.mapped_column(default=False)
    backed_up: so.Mapped[bool] = so.mapped_column(default=False)
    transports: so.Mapped[str] = so.mapped_column(sa.String(128), default='')
    aaguid: so.Mapped[str] = so.mapped_column(sa.String(36), default='')
    name: so.Mapped[str] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f'<Passkey {self.id} of user {self.user_id}>'

    @staticmethod
    def of(user: User) -> sa.Select:
        """The account's passkeys, oldest first."""
        return (
            sa.select(Passkey)
            .where(Passkey.user_id == user.id)
            .order_by(Passkey.created_at, Passkey.id)
        )

    @staticmethod
    def list_for(user: User) -> list['Passkey']:
        return list(db.session.scalars(Passkey.of(user)))

    @staticmethod
    def count_for(user_id: int) -> int:
        query = sa.select(sa.func.count()).where(Passkey.user_id == user_id)
        return db.session.scalar(query)

    @staticmethod
    def by_credential_id(credential_id: bytes) -> 'Passkey | None':
        return db.session.scalar(
            sa.select(Passkey).where(Passkey.credential_id == credential_id)
        )

    @staticmethod
    def handle_for(user: User) -> bytes:
        """The account's WebAuthn user id: its passkeys' one, or a new random
        one (then an authenticator keeps one passkey per account)."""
        handle = db.session.scalar(
            sa.select(Passkey.user_handle).where(Passkey.user_id == user.id).limit(1)
        )
        return handle or secrets.token_bytes(32)

    @staticmethod
    def remove_all(user: User) -> int:
        """Remove every passkey of the account (no commit); how many."""
        result = db.session.execute(
            sa.delete(Passkey).where(Passkey.user_id == user.id)
        )
        return result.rowcount

    def record_use(self, sign_count: int, backed_up: bool) -> bool:
        """Store the new counter (compare-and-set: of two requests with one
        counter value only one passes; 0 stays 0 for authenticators that
        keep no counter) and backup state; False if the counter went back."""
        counter = (
            Passkey.sign_count < sign_count if sign_count else Passkey.sign_count == 0
        )
        result = db.session.execute(
            sa.update(Passkey)
            .where(Passkey.id == self.id, counter)
            .values(sign_count=sign_count, backed_up=backed_up, last_used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
        self.sign_count, self.backed_up = sign_count, backed_up
        return True


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Ceremony(db.Model):
    __tablename__ = 'passkey_ceremony'

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    purpose: so.Mapped[str] = so.mapped_column(sa.String(16))
    user_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey(User.id, ondelete='CASCADE')
    )
    challenge: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary(64))
    # A registration's WebAuthn user id, stored with the passkey it makes.
    user_handle: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary(64))
    created_at: so.Mapped[datetime] = so.mapped_column(
        UTCDateTime(), default=utcnow, index=True
    )

    @staticmethod
    def cutoff() -> datetime:
        return utcnow() - timedelta(seconds=CEREMONY_SECONDS)

    @staticmethod
    def begin(
        purpose: str, user_id: int | None = None, user_handle: bytes | None = None
    ) -> bytes:
        """A new challenge for this browser and purpose (no commit). It
        replaces the browser's earlier one for the purpose; expired
        ceremonies of everyone are cleared on the way."""
        token = session.get(SESSION_KEY)
        if not isinstance(token, str) or len(token) != 43:
            token = session[SESSION_KEY] = secrets.token_urlsafe(32)
        db.session.execute(
            sa.delete(Ceremony).where(
                sa.or_(
                    Ceremony.created_at < Ceremony.cutoff(),
                    sa.and_(
                        Ceremony.token_hash == _digest(token),
                        Ceremony.purpose == purpose,
                    ),
                )
            )
        )
        challenge = secrets.token_bytes(32)
        db.session.add(
            Ceremony(
                token_hash=_digest(token),
                purpose=purpose,
                user_id=user_id,
                challenge=challenge,
                user_handle=user_handle,
            )
        )
        return challenge

    @staticmethod
    def take(purpose: str, user_id: int | None = None) -> sa.Row | None:
        """This browser's live ceremony for the purpose (and account), with
        its `challenge` and `user_handle`, spent now whatever the answer
        turns out to be (no commit); None if there is none, it expired or
        another request took it first."""
        token = session.get(SESSION_KEY)
        if not isinstance(token, str) or len(token) != 43:
            return None
        row = db.session.execute(
            sa.select(
                Ceremony.id, Ceremony.challenge, Ceremony.user_id, Ceremony.user_handle
            ).where(
                Ceremony.token_hash == _digest(token),
                Ceremony.purpose == purpose,
                Ceremony.created_at >= Ceremony.cutoff(),
            )
        ).first()
        if row is None or row.user_id != user_id:
            return None
        taken = db.session.execute(sa.delete(Ceremony).where(Ceremony.id == row.id))
        return row if taken.rowcount == 1 else None
