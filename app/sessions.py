"""Server-side sign-ins: one `user_session` row per signed-in browser, and
the bookkeeping of a signed-in request.

Flask-Login keeps a random token, not the account id, in the session cookie
and the remember-me cookie; the row keeps only the token's SHA-256. The user
loader accepts a token only while its row is not revoked nor expired (idle
longer than SESSION_IDLE_TIMEOUT, or older than SESSION_MAX_AGE), in the
same query that loads the user, so signing out (or a password change) ends
a copied cookie too. Each signed-in request records activity, at most once
per LAST_SEEN_INTERVAL (`init_app`).
"""

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app, request
from flask_login import current_user, login_user, logout_user

from app import devices
from app.agents import UNKNOWN_BROWSER, UNKNOWN_SYSTEM, agent_family, describe_agent
from app.database import attach
from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db, login
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.models import User

__all__ = ['agent_family', 'describe_agent']  # for app.notices and others

UNKNOWN_ADDRESS = 'unknown'
# The pages' words for what describe_agent() and approximate_address() say in
# English when they cannot tell (emails and the stored security log keep it).
_SHOWN = {
    UNKNOWN_BROWSER: _l('an unknown browser'),
    UNKNOWN_SYSTEM: _l('an unknown system'),
    UNKNOWN_ADDRESS: _l('unknown'),
}


def shown(text: str) -> str:
    """A browser, system or address as a page shows it, in its language."""
    return str(_SHOWN.get(text, text))


def shown_agent(browser: str, system: str) -> str:
    """'Firefox 133 on Windows', in the page's language."""
    return _('%(browser)s on %(system)s', browser=shown(browser), system=shown(system))


def device_phrase(browser: str | None, system: str | None) -> str:
    """shown_agent() for a notice's data (app.notices.request_context): None
    for both is an operator at the server's command line; a browser without
    a system was queued before the two were kept apart."""
    if browser is None and system is None:
        return _('an operator')
    return browser if system is None else shown_agent(browser, system)


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
        *User.__table__.c,
        UserSession.id.label('session_id'),
        UserSession.created_at.label('session_created_at'),
        UserSession.last_seen.label('session_last_seen'),
        UserSession.proven_at.label('session_proven_at'),
    )
    .join(UserSession, UserSession.user_id == User.id)
    .where(UserSession.token_hash == sa.bindparam('token_hash'))
    .where(UserSession.revoked_at.is_(None), User.deleted_at.is_(None))
    .where(UserSession.last_seen > sa.bindparam('idle_since'))
    .where(UserSession.created_at > sa.bindparam('born_since'))
)


def _lifetimes() -> dict:
    """The oldest activity and the oldest start a live sign-in may have."""
    config, now = current_app.config, utcnow()
    return {
        'idle_since': now - timedelta(seconds=config['SESSION_IDLE_TIMEOUT']),
        'born_since': now - timedelta(seconds=config['SESSION_MAX_AGE']),
    }


@login.user_loader
def load_user(token: str) -> User | None:
    """The account of a live sign-in: one query for the user and its row."""
    if not isinstance(token, str) or len(token) > 100:
        return None
    params = {'token_hash': _digest(token), **_lifetimes()}
    row = db.session.connection().execute(_LOAD_USER, params).first()
    if row is None:
        return None
    user = attach(User, row)  # as a persistent ORM object, without its cost
    user.session_token = token
    user.session_id = row.session_id
    user.session_created_at = row.session_created_at
    user.session_last_seen = row.session_last_seen
    user.session_proven_at = row.session_proven_at
    return user


def init_app(app: Flask) -> None:
    app.add_template_global(device_phrase)  # the notices' browser line
    # A remember-me cookie lasts as long as its sign-in may, no longer.
    max_age = timedelta(seconds=app.config['SESSION_MAX_AGE'])
    app.config['REMEMBER_COOKIE_DURATION'] = max_age

    @app.before_request
    def _record_activity() -> None:
        # The account's and this sign-in's last_seen, in one commit when due.
        if current_user.is_authenticated:
            every = app.config['LAST_SEEN_INTERVAL']
            seen = current_user.touch_last_seen(every)
            if touch(current_user, every) or seen:
                db.session.commit()


def sign_in(user: User, remember: bool = False, device_hash: str = '') -> None:
    """Record a new sign-in for this browser and log it in (commits); the
    sign-in is this session's first proof of identity."""
    token, now = secrets.token_urlsafe(32), utcnow()
    record = UserSession(
        token_hash=_digest(token),
        proven_at=now,
        device_hash=device_hash,
        user_id=user.id,
        created_at=now,
        last_seen=now,
        user_agent=(request.user_agent.string or '')[:512],
        agent_family=agent_family(request.user_agent.string),
        client_address=(request.remote_addr or '')[:64],
    )
    db.session.add(record)
    db.session.commit()
    user.session_token, user.session_id = token, record.id
    user.session_created_at = user.session_last_seen = now
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


def touch(user: User, every: int) -> bool:
    """Record this sign-in's activity, at most once per `every` seconds (no
    commit). Its idle lifetime counts from the last write."""
    now = utcnow()
    last = user.session_last_seen
    if user.session_id is None or (last and now - last < timedelta(seconds=every)):
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
    """A row of /sessions: browser, system and address in the page's words."""

    id: int
    browser: str
    system: str
    address: str
    created_at: datetime
    last_seen: datetime
    current: bool


def live_sessions(user: User) -> list[SessionView]:
    """The account's signed-in browsers, most recently active first."""
    alive = _lifetimes()
    rows = db.session.scalars(
        sa.select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .where(UserSession.last_seen > alive['idle_since'])
        .where(UserSession.created_at > alive['born_since'])
        .order_by(UserSession.last_seen.desc(), UserSession.id.desc())
    )
    return [
        SessionView(
            row.id,
            *map(shown, describe_agent(row.user_agent)),
            shown(approximate_address(row.client_address)),
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
        return UNKNOWN_ADDRESS
    if ip.version == 4:
        return '.'.join(str(ip).split('.')[:3] + ['x'])
    return str(ipaddress.ip_network(f'{ip}/48', strict=False))
