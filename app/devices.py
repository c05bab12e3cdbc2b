"""Browsers recognised by themselves, not by their brand.

Each browser gets a long-lived, signed, HttpOnly device cookie holding a
random token at its first sign-in; `known_device` keeps the token's SHA-256
per account it signed in to. A sign-in without a valid cookie known to the
account is "a browser not seen before", even with the same browser and
system as an earlier one (the usual case of an attacker). The row also
holds "Trust this browser" (`trusted_until`), which skips the second
sign-in step there; it is revoked with the session list and by password
changes (app.sessions.revoke).
"""

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import after_this_request, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.dialects import postgresql, sqlite

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.models import User

COOKIE = 'device'
MAX_AGE = 400 * 24 * 3600  # the most browsers keep a cookie


class KnownDevice(db.Model):
    __tablename__ = 'known_device'
    __table_args__ = (sa.UniqueConstraint('user_id', 'device_hash'),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey(User.id, ondelete='CASCADE')
    )
    device_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    first_seen: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    trusted_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())


def _serializer() -> URLSafeSerializer:
    config = current_app.config
    keys = [*reversed(config.get('SECRET_KEY_FALLBACKS') or []), config['SECRET_KEY']]
    return URLSafeSerializer(keys, salt='device-cookie')  # signs with the last


def cookie_token() -> str | None:
    """The token of this request's device cookie, if it is genuine."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 200:
        return None
    try:
        token = _serializer().loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) and 20 <= len(token) <= 64 else None


def browser_token() -> str:
    """This browser's token; a new one (and its cookie) if it has none."""
    token = g.get('device_token') or cookie_token()
    if token is None:
        token = secrets.token_urlsafe(32)
        value = _serializer().dumps(token)

        @after_this_request
        def _set_cookie(response):
            response.set_cookie(
                COOKIE,
                value,
                max_age=MAX_AGE,
                httponly=True,
                secure=current_app.config['SESSION_COOKIE_SECURE'],
                samesite='Lax',
            )
            return response

    g.device_token = token
    return token


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(user: User, device_hash: str):
    return sa.select(KnownDevice).where(
        KnownDevice.user_id == user.id, KnownDevice.device_hash == device_hash
    )


def seen(user: User) -> bool:
    """Has this browser (by its cookie) signed in to this account before?"""
    token = cookie_token()
    return (
        token is not None and db.session.scalar(_row(user, digest(token))) is not None
    )


def any_known(user: User) -> bool:
    query = sa.select(KnownDevice.id).where(KnownDevice.user_id == user.id).limit(1)
    return db.session.scalar(query) is not None


def remember(user: User) -> str:
    """Record this browser for the account (giving it a cookie if it has
    none); returns its hash, for the session row (no commit)."""
    device_hash = digest(browser_token())
    if db.session.scalar(_row(user, device_hash)) is None:
        dialect = db.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == 'postgresql' else sqlite.insert
        # Two sign-ins at once from one browser: the second adds nothing.
        db.session.execute(
            insert(KnownDevice)
            .values(user_id=user.id, device_hash=device_hash, first_seen=utcnow())
            .on_conflict_do_nothing()
        )
    return device_hash


def trusted(user: User) -> bool:
    """Does "Trust this browser" still hold here for this account?"""
    token = cookie_token()
    if token is None:
        return False
    query = _row(user, digest(token)).where(KnownDevice.trusted_until > utcnow())
    return db.session.scalar(query) is not None


def trust(user: User, device_hash: str) -> None:
    """Skip the second step in this browser for TRUSTED_BROWSER_DAYS."""
    days = current_app.config['TRUSTED_BROWSER_DAYS']
    db.session.execute(
        sa.update(KnownDevice)
        .where(KnownDevice.user_id == user.id, KnownDevice.device_hash == device_hash)
        .values(trusted_until=utcnow() + timedelta(days=days))
        .execution_options(synchronize_session=False)
    )


def distrust(user_id: int, device_hashes=None) -> int:
    """End "Trust this browser" for the account's browsers, or only for
    those in `device_hashes` (a list or a select); no commit."""
    query = sa.update(KnownDevice).where(
        KnownDevice.user_id == user_id, KnownDevice.trusted_until.is_not(None)
    )
    if device_hashes is not None:
        query = query.where(KnownDevice.device_hash.in_(device_hashes))
    result = db.session.execute(
        query.values(trusted_until=None).execution_options(synchronize_session=False)
    )
    return result.rowcount
