"""The security log: what happened to an account, for its owner to read.

`record()` is the one call for an event people should see: it adds a
`security_event` row to the caller's transaction (so the event is stored
if and only if the change it records is) and writes the structured audit
line (app.security.audit) for operators. Events older than
SECURITY_LOG_DAYS are removed by `prune()`, which the account purge runs.
"""

import json
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, has_request_context, request

from app.agents import UNKNOWN_BROWSER, UNKNOWN_SYSTEM
from app.agents import parse as parse_agent
from app.dbtypes import UTCDateTime, utcnow
from app.email import public_url
from app.extensions import db
from app.i18n import lazy_gettext as _l
from app.models import User
from app.security import audit
from app.sessions import approximate_address, shown, shown_agent

# What each event is called on /security_log (and in the export).
LABELS = {
    'login': _l('Signed in'),
    'login_failed': _l('A sign-in failed: wrong password'),
    'login_code_failed': _l('A sign-in failed: wrong code'),
    'login_limit_reached': _l('Too many failed sign-ins: sign-in paused'),
    'password_guess_budget_spent': _l('Too many wrong passwords: signed out'),
    'new_browser_notice': _l('Signed in from a new browser: we emailed you'),
    'password_changed': _l('Password changed'),
    'reset_email_queued': _l('Password reset link sent'),
    'reset_completed': _l('Password reset'),
    'email_change_requested': _l('Email change asked for'),
    'email_changed': _l('Email address changed'),
    'email_reverted': _l('Email change undone'),
    'authenticator_added': _l('Authenticator app added'),
    'authenticator_removed': _l('Authenticator app removed'),
    'recovery_codes_regenerated': _l('New recovery codes made'),
    'recovery_code_used': _l('Recovery code used to sign in'),
    'passkey_added': _l('Passkey added'),
    'passkey_removed': _l('Passkey removed'),
    'two_factor_reset_by_operator': _l('Second factor removed by an operator'),
    'session_revoked': _l('A session was signed out'),
    'sessions_revoked': _l('Other sessions were signed out'),
    'not_me': _l('"This wasn\'t me": every session signed out'),
    'language_changed': _l('Language changed'),
    'export': _l('Your data was downloaded'),
    'deletion_scheduled': _l('Account deletion scheduled'),
    'deletion_cancelled': _l('Account deletion cancelled: account restored'),
    'account_deleted': _l('An account was deleted'),
}

# What where() stores for an event with no request (the CLI), and the
# pages' words for it.
SERVER, OPERATOR = 'the server', 'an operator'
_BY_SERVER = {SERVER: _l('the server'), OPERATOR: _l('an operator')}


class SecurityEvent(db.Model):
    __tablename__ = 'security_event'
    __table_args__ = (
        # /security_log reads one account's events newest first.
        sa.Index('ix_security_event_user_time', 'user_id', 'created_at', 'id'),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # None for the anonymous line a purged account leaves.
    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey(User.id))
    event: so.Mapped[str] = so.mapped_column(sa.String(40))
    created_at: so.Mapped[datetime] = so.mapped_column(
        UTCDateTime(), default=utcnow, index=True
    )
    # Approximate (203.0.113.x): enough to recognise, as in the notices.
    address: so.Mapped[str] = so.mapped_column(sa.String(64), default='')
    browser: so.Mapped[str] = so.mapped_column(sa.String(160), default='')
    # Small JSON facts (a count, a factor); never a token or address.
    detail: so.Mapped[str | None] = so.mapped_column(sa.String(200))

    def __repr__(self) -> str:
        return f'<SecurityEvent {self.id} {self.event}>'

    @property
    def label(self) -> str:
        return str(LABELS.get(self.event, self.event))

    @property
    def shown_browser(self) -> str:
        """The stored English of where() in the page's language."""
        if self.browser in _BY_SERVER:
            return str(_BY_SERVER[self.browser])
        browser, on, system = self.browser.partition(' on ')
        return shown_agent(browser, system) if on else self.browser

    @property
    def shown_address(self) -> str:
        return str(_BY_SERVER.get(self.address, shown(self.address)))

    @property
    def facts(self) -> dict:
        return json.loads(self.detail) if self.detail else {}

    def as_dict(self) -> dict:
        return {
            'time': self.created_at.isoformat(timespec='seconds').replace(
                '+00:00', 'Z'
            ),
            'event': self.event,
            'description': self.label,
            'address': self.address,
            'browser': self.browser,
            **self.facts,
        }


def record(
    event: str,
    user: User | int | None,
    private: dict | None = None,
    origin: dict | None = None,
    **fields,
) -> int:
    """Add the event to this transaction and write its audit line; `fields`
    go to both, `private` only to the audit line; `origin` is where() of
    the request that caused it, when that was earlier (default: now).
    Returns the event's id, for a notice to link to.

    Inserted on the session's connection: no autoflush, so a change still
    pending in the session fails at the caller's commit, as it would have.
    """
    assert event in LABELS, event
    user_id = user.id if isinstance(user, User) else user
    shown = {k: v for k, v in fields.items() if v is not None}
    place = origin or where()
    values = {
        'user_id': user_id,
        'event': event,
        'created_at': utcnow(),
        'address': str(place.get('address', ''))[:64],
        'browser': str(place.get('browser', ''))[:160],
    }
    values['detail'] = json.dumps(shown, sort_keys=True)[:200] if shown else None
    result = db.session.connection().execute(sa.insert(SecurityEvent), values)
    audit(event, account=user_id, **fields, **(private or {}))
    return result.inserted_primary_key[0]


def where() -> dict:
    """Roughly where from and which browser family (no versions), in
    English: stored so, and shown in the reader's language (shown_browser)."""
    if not has_request_context():
        return {'address': SERVER, 'browser': OPERATOR}
    browser, _, system = parse_agent(request.user_agent.string)
    return {
        'address': approximate_address(request.remote_addr or ''),
        'browser': f'{browser or UNKNOWN_BROWSER} on {system or UNKNOWN_SYSTEM}',
    }


def event_url(event_id: int | None) -> str | None:
    """The public link to one event, for the notice that tells of it."""
    if not event_id:
        return None
    return public_url('account.security_event', event_id=event_id)


def kept_since() -> datetime:
    return utcnow() - timedelta(days=current_app.config['SECURITY_LOG_DAYS'])


def events_of(user: User) -> sa.Select:
    """The account's events within SECURITY_LOG_DAYS, newest first."""
    return (
        sa.select(SecurityEvent)
        .where(SecurityEvent.user_id == user.id)
        .where(SecurityEvent.created_at >= kept_since())
        .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc())
    )


def one_of(user: User, event_id: int) -> SecurityEvent | None:
    return db.session.scalar(events_of(user).where(SecurityEvent.id == event_id))


def prune() -> int:
    """Remove events older than SECURITY_LOG_DAYS (no commit)."""
    result = db.session.execute(
        sa.delete(SecurityEvent).where(SecurityEvent.created_at < kept_since())
    )
    return result.rowcount


def erase(user_id: int) -> None:
    """An account is being purged: its events go, and one anonymous line
    says that an account was deleted (no commit)."""
    db.session.execute(sa.delete(SecurityEvent).where(SecurityEvent.user_id == user_id))
    db.session.add(SecurityEvent(event='account_deleted', address='', browser=''))
