"""Server-side sign-ins: one `user_session` row per signed-in browser.

Flask-Login keeps a random token, not the account id, in the session cookie
and the remember-me cookie; the row keeps only the token's SHA-256. The user
loader accepts a token only while its row is not revoked, in the same query
that loads the user, so signing out (or a password change) ends a copied
cookie too.
"""

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import request
from flask_login import current_user, login_user, logout_user

from app import devices
from app.agents import agent_family, describe_agent
from app.database import attach
from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db, login
from app.models import User

__all__ = ['agent_family', 'describe_agent']  # for app.notices and others

TOUCH_EVERY = timedelta(seconds=60)  # last_seen is written at most this often


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserSession(db.Model):
    __tablename__ = 'user_session'

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey(User.id), index=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    last_seen: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(512), default='')
    # "Chrome/Linux": browser and OS without versions, parsed once at sign-in.
    agent_family: so.Mapped[str] = so.mapped_column(sa.String(128), default='')
    client_address: so.Mapped[str] = so.mapped_column(sa.String(64), default='')
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # The last proof of identity in this session (the sign-in, a password or
    # a code): sensitive changes need one within REAUTH_WINDOW (app.reauth).
    proven_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # This browser's device cookie (app.devices), as its SHA-256.
    device_hash: so.Mapped[str] = so.mapped_column(sa.String(64), default='')

    def __repr__(self) -> str:
        return f'<UserSession {self.id} of user {self.user_id}>'


# Built once: on every signed-in request, building it cost as much as running it.
_LOAD_USER = (
    sa.select(
        *User.__table__.c, UserSession.id, UserSession.last_seen, UserSession.proven_at
    )
    .join(UserSession, UserSession.user_id == User.id)
    .where(UserSession.token_hash == sa.bindparam('token_hash'))
    .where(UserSession.revoked_at.is_(None), User.deleted_at.is_(None))
)


@login.user_loader
def load_user(token: str) -> User | None:
    """The account of a live sign-in: one query for the user and its row."""
    if not isinstance(token, str) or len(token) > 100:
        return None
    params = {'token_hash': _digest(token)}
    row = db.session.connection().execute(_LOAD_USER, params).first()
    if row is None:
        return None
    user = attach(User, row[:-3])  # as a persistent ORM object, without its cost
    user.session_id, user.session_last_seen, user.session_proven_at = row[-3:]
    user.session_token = token
    return user


def sign_in(user: User, remember: bool = False, device_hash: str = '') -> None:
    """Record a new sign-in for this browser and log it in (commits); the
    sign-in is this session's first proof of identity."""
    token = secrets.token_urlsafe(32)
    record = UserSession(
        token_hash=_digest(token),
        proven_at=utcnow(),
        device_hash=device_hash,
        user_id=user.id,
        user_agent=(request.user_agent.string or '')[:512],
        agent_family=agent_family(request.user_agent.string),
        client_address=(request.remote_addr or '')[:64],
    )
    db.session.add(record)
    db.session.commit()
    user.session_token, user.session_id = token, record.id
    user.session_proven_at = record.proven_at
    login_user(user, remember=remember)


def is_new_browser(user: User) -> bool:
    """True if this request's browser and OS (versions ignored) match none of
    the account's sign-ins; False for its very first sign-in."""
    here = agent_family(request.user_agent.string)
    seen, same = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(UserSession.agent_family == here),
        ).where(UserSession.user_id == user.id)
    ).one()
    return seen > 0 and same == 0


def sign_out() -> None:
    """End this browser's sign-in on the server, then in the cookies."""
    if current_user.is_authenticated and current_user.session_id is not None:
        revoke(current_user.id, UserSession.id == current_user.session_id)
        db.session.commit()
    logout_user()


def revoke(user_id: int, *conditions, end_trust: bool = False) -> int:
    """Revoke the account's live sign-ins matching `conditions` (no commit);
    with `end_trust`, their browsers' "Trust this browser" ends too."""
    live = (UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if end_trust:
        hashes = sa.select(UserSession.device_hash).where(*live, *conditions)
        devices.distrust(user_id, hashes)
    result = db.session.execute(
        sa.update(UserSession)
        .where(*live)
        .where(*conditions)
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def revoke_all(user: User) -> int:
    """Sign the account out everywhere and trust no browser (after a
    password change or reset, or "this wasn't me")."""
    devices.distrust(user.id)
    return revoke(user.id)


def touch(user: User) -> bool:
    """Record activity, at most once a minute per sign-in (no commit)."""
    now = utcnow()
    last = getattr(user, 'session_last_seen', None)
    if user.session_id is None or (last and now - last < TOUCH_EVERY):
        return False
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.id == user.session_id)
        .values(last_seen=now)
        .execution_options(synchronize_session=False)
    )
    user.session_last_seen = now
    return True


@dataclass
class SessionView:
    id: int
    browser: str
    system: str
    address: str
    created_at: datetime
    last_seen: datetime
    current: bool


def live_sessions(user: User) -> list[SessionView]:
    """The account's signed-in browsers, most recently active first."""
    rows = db.session.scalars(
        sa.select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .order_by(UserSession.last_seen.desc(), UserSession.id.desc())
    )
    return [
        SessionView(
            row.id,
            *describe_agent(row.user_agent),
            approximate_address(row.client_address),
            row.created_at,
            row.last_seen,
            row.id == user.session_id,
        )
        for row in rows
    ]


def approximate_address(address: str) -> str:
    """203.0.113.7 -> 203.0.113.x; IPv6 to its /48: enough to recognise."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return 'unknown'
    if ip.version == 4:
        return '.'.join(str(ip).split('.')[:3] + ['x'])
    return str(ipaddress.ip_network(f'{ip}/48', strict=False))
