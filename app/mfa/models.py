"""The second factors of an account and the pending second sign-in step.

- Authenticator: the TOTP secret of an account that turned it on (RFC
  6238, 30 s, 6 digits), sealed (app.mfa.sealing). `last_step` is the time
  step of the last code accepted: a code is good once.
- RecoveryCode: ten single-use codes, stored as SHA-256 digests (each has
  about 52 random bits, and every wrong try counts against a budget).
- PendingSignIn: a right password waiting for its second step, tied to
  one browser by a random token in its session cookie (only its digest
  is stored), for PENDING_SECONDS.
"""

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

import pyotp
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from app import devices
from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.mfa.sealing import seal, unseal
from app.models import User

ISSUER = 'Microblog'
PENDING_SECONDS = 300
RECOVERY_CODES = 10
ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _context(user_id: int) -> str:
    return f'authenticator:{user_id}'


def matching_step(
    totp: pyotp.TOTP, code: str, after: int, at: datetime | None = None
) -> int | None:
    """The time step `code` belongs to: this one or one either side (clock
    drift), and later than `after` (the last used); else None."""
    code = re.sub(r'\s', '', code or '')
    if not re.fullmatch(r'[0-9]{6}', code):  # ASCII: compare_digest needs it
        return None
    now = totp.timecode(at or utcnow())
    for step in (now - 1, now, now + 1):
        if step > after and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


class Authenticator(db.Model):
    """Only an authenticator that is on has a row: a new secret waits in
    the browser's session, sealed, until a right code turns it on."""

    __tablename__ = 'authenticator'

    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey(User.id, ondelete='CASCADE'), primary_key=True
    )
    secret: so.Mapped[str] = so.mapped_column(sa.String(255))  # sealed
    enabled_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    last_step: so.Mapped[int] = so.mapped_column(default=0)

    @staticmethod
    def of(user: User) -> 'Authenticator | None':
        return db.session.get(Authenticator, user.id)

    @staticmethod
    def enabled_for(user: User) -> bool:
        query = sa.select(Authenticator.user_id).where(Authenticator.user_id == user.id)
        return db.session.scalar(query) is not None

    @staticmethod
    def new_secret(user: User) -> str:
        """A new secret for `user`, sealed (to keep in the session)."""
        return seal(pyotp.random_base32(), _context(user.id))

    @staticmethod
    def open_sealed(user: User, sealed: str | None) -> pyotp.TOTP | None:
        """The TOTP of a sealed secret of `user`'s, or None if it is not one."""
        try:
            return pyotp.TOTP(unseal(sealed or '', _context(user.id))[0])
        except ValueError:
            return None

    @staticmethod
    def turn_on(user: User, sealed: str, code: str) -> bool:
        """Store the secret if `code` is right for it (no commit; a
        concurrent turn-on meets the primary key at commit)."""
        totp = Authenticator.open_sealed(user, sealed)
        step = totp and matching_step(totp, code, 0)
        if not step:
            return False
        db.session.add(Authenticator(user_id=user.id, secret=sealed, last_step=step))
        return True

    def totp(self) -> pyotp.TOTP:
        secret, current = unseal(self.secret, _context(self.user_id))
        if not current:  # opened with a fallback key: seal it under the new one
            self.secret = seal(secret, _context(self.user_id))
        return pyotp.TOTP(secret)

    def verify(self, code: str, at: datetime | None = None) -> bool:
        """A code of this time step or one step either side, never one
        already used (nor older than the last used): compare-and-set on
        `last_step`, so of two requests with one code only one passes."""
        try:
            totp = self.totp()
        except ValueError:
            # Recovery codes still work; the operator must restore the key.
            current_app.logger.error(
                'authenticator secret of account %s cannot be opened: was '
                'SECRET_KEY changed without listing the old one in '
                'SECRET_KEY_FALLBACKS?',
                self.user_id,
            )
            return False
        step = matching_step(totp, code, self.last_step, at)
        return step is not None and self._use_step(step)

    def _use_step(self, step: int) -> bool:
        result = db.session.execute(
            sa.update(Authenticator)
            .where(Authenticator.user_id == self.user_id)
            .where(Authenticator.last_step < step)
            .values(last_step=step)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
        self.last_step = step
        return True


def normalize_recovery_code(code: str) -> str:
    return re.sub(r'[\s-]', '', (code or '').lower())


class RecoveryCode(db.Model):
    __tablename__ = 'recovery_code'

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey(User.id, ondelete='CASCADE'), index=True
    )
    code_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    @staticmethod
    def _hash(user_id: int, code: str) -> str:
        return _digest(f'{user_id}:{normalize_recovery_code(code)}')

    @staticmethod
    def replace_all(user: User) -> list[str]:
        """Ten new codes (`k7p2x-9mqrt`); every old one dies (no commit)."""
        RecoveryCode.delete_all(user)
        codes = []
        for _ in range(RECOVERY_CODES):
            raw = ''.join(secrets.choice(ALPHABET) for _ in range(10))
            codes.append(f'{raw[:5]}-{raw[5:]}')
        db.session.add_all(
            RecoveryCode(user_id=user.id, code_hash=RecoveryCode._hash(user.id, c))
            for c in codes
        )
        return codes

    @staticmethod
    def delete_all(user: User) -> None:
        db.session.execute(
            sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
        )

    @staticmethod
    def use(user: User, code: str) -> bool:
        """Spend one unused code (compare-and-set: a code works once)."""
        if not re.fullmatch(r'[a-z0-9]{10}', normalize_recovery_code(code)):
            return False
        result = db.session.execute(
            sa.update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == RecoveryCode._hash(user.id, code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    @staticmethod
    def remaining(user: User) -> int:
        query = sa.select(sa.func.count()).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
        return db.session.scalar(query)


class PendingSignIn(db.Model):
    __tablename__ = 'pending_sign_in'

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey(User.id, ondelete='CASCADE'), index=True
    )
    remember: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    @staticmethod
    def open(user: User, remember: bool) -> str:
        """A new pending step; returns the token for this browser (no commit).
        The account's expired steps are cleared on the way."""
        PendingSignIn.clear(user.id, PendingSignIn.created_at < PendingSignIn.cutoff())
        token = secrets.token_urlsafe(32)
        db.session.add(
            PendingSignIn(token_hash=_digest(token), user_id=user.id, remember=remember)
        )
        return token

    @staticmethod
    def cutoff() -> datetime:
        return utcnow() - timedelta(seconds=PENDING_SECONDS)

    @staticmethod
    def find(token: str | None) -> 'PendingSignIn | None':
        """The live step this token names, or None (unknown or expired)."""
        if not isinstance(token, str) or len(token) > 100:
            return None
        return db.session.scalar(
            sa.select(PendingSignIn).where(
                PendingSignIn.token_hash == _digest(token),
                PendingSignIn.created_at >= PendingSignIn.cutoff(),
            )
        )

    @staticmethod
    def clear(user_id: int, *conditions) -> None:
        db.session.execute(
            sa.delete(PendingSignIn).where(
                PendingSignIn.user_id == user_id, *conditions
            )
        )


def second_factor_on(user: User) -> bool:
    """Does signing in to this account take a second step?"""
    return Authenticator.enabled_for(user)


def remove_second_factor(user: User) -> bool:
    """Remove the authenticator, the recovery codes, pending second steps
    and trusted browsers (no commit); False if there was no factor."""
    had = Authenticator.of(user) is not None
    db.session.execute(sa.delete(Authenticator).where(Authenticator.user_id == user.id))
    RecoveryCode.delete_all(user)
    PendingSignIn.clear(user.id)
    devices.distrust(user.id)
    return had
