"""Sign-ins end on the server: after SESSION_IDLE_TIMEOUT without a request
and SESSION_MAX_AGE after they began, remember-me or not; activity is
recorded at most once per LAST_SEEN_INTERVAL."""

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import sqlalchemy as sa

from app.dbtypes import utcnow
from app.extensions import db
from app.models import User
from app.sessions import UserSession
from app.testing import AuthActions

DAY = 24 * 3600
ROOT = Path(__file__).resolve().parent.parent


def signed_in(app, remember=False):
    client = app.test_client()
    AuthActions(client).register()
    AuthActions(client).login(remember=remember)
    assert client.get('/index').status_code == 200
    return client


def age_sessions(app, **columns) -> None:
    """Move every sign-in's times into the past: column=timedelta."""
    with app.app_context():
        now = utcnow()
        values = {name: now - ago for name, ago in columns.items()}
        db.session.execute(sa.update(UserSession).values(**values))
        db.session.commit()


def is_signed_out(client) -> bool:
    response = client.get('/index')
    return response.status_code == 302 and '/login' in response.location


def test_a_sign_in_ends_after_the_idle_timeout(make_app):
    app = make_app(SESSION_IDLE_TIMEOUT=DAY)
    client = signed_in(app)
    age_sessions(app, last_seen=timedelta(hours=23))
    assert client.get('/index').status_code == 200  # still within a day
    age_sessions(app, last_seen=timedelta(days=1, seconds=1))
    assert is_signed_out(client)
    with app.app_context():  # nothing written for the expired sign-in
        seen = db.session.scalar(sa.select(UserSession.last_seen))
        assert utcnow() - seen > timedelta(days=1)


def test_activity_keeps_a_sign_in_alive(make_app):
    """The idle lifetime counts from the last recorded request."""
    app = make_app(SESSION_IDLE_TIMEOUT=DAY)
    client = signed_in(app)
    for _ in range(3):
        age_sessions(app, last_seen=timedelta(hours=20))
        assert client.get('/explore').status_code == 200  # touched: now
    with app.app_context():
        seen = db.session.scalar(sa.select(UserSession.last_seen))
        assert utcnow() - seen < timedelta(minutes=5)


def test_a_sign_in_ends_at_its_maximum_age_however_active(make_app):
    app = make_app(SESSION_MAX_AGE=7 * DAY)
    client = signed_in(app)
    age_sessions(app, created_at=timedelta(days=6))
    assert client.get('/index').status_code == 200
    age_sessions(app, created_at=timedelta(days=7, seconds=1))
    assert is_signed_out(client)


def test_remember_me_cannot_outlive_either_lifetime(make_app):
    """The remember-me cookie alone, the browser's session cookie gone, is
    refused once the sign-in it names has expired; its own expiry is the
    maximum age."""
    app = make_app(SESSION_MAX_AGE=30 * DAY, SESSION_IDLE_TIMEOUT=DAY)
    client = app.test_client()
    AuthActions(client).register()
    response = AuthActions(client).login(remember=True)
    cookie = next(
        h for h in response.headers.getlist('Set-Cookie') if 'remember_token=' in h
    )
    expires = parsedate_to_datetime(cookie.split('Expires=')[1].split(';')[0])
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs(expires - expected) < timedelta(minutes=5)

    def fresh_browser_session() -> None:
        client.delete_cookie('session', domain='microblog.test')

    fresh_browser_session()
    assert client.get('/index').status_code == 200  # remembered
    for aged in ({'last_seen': timedelta(days=2)}, {'created_at': timedelta(days=31)}):
        age_sessions(app, created_at=timedelta(0), last_seen=timedelta(0))
        fresh_browser_session()
        assert client.get('/index').status_code == 200
        age_sessions(app, **aged)
        fresh_browser_session()
        assert is_signed_out(client), aged


def test_expired_sign_ins_are_not_listed(make_app):
    app = make_app(SESSION_IDLE_TIMEOUT=DAY)
    signed_in(app)  # the first browser, left idle below
    other = app.test_client()
    AuthActions(other).login()
    with app.app_context():
        first = db.session.scalar(sa.select(sa.func.min(UserSession.id)))
        db.session.execute(
            sa.update(UserSession)
            .where(UserSession.id == first)
            .values(last_seen=utcnow() - timedelta(days=2))
        )
        db.session.commit()
    page = other.get('/sessions').get_data(as_text=True)
    assert page.count('name="session"') == 1  # only this browser's


def test_one_setting_paces_every_last_seen_write(make_app, count_statements):
    """LAST_SEEN_INTERVAL paces the account's last_seen and the sign-in's
    alike: within it, a request writes nothing; past it, both, at once."""
    app = make_app(LAST_SEEN_INTERVAL=3600, MAIL_SENDER_ENABLED=False)
    client = signed_in(app)

    def updates_after(ago: timedelta) -> list[str]:
        with app.app_context():
            then = utcnow() - ago
            db.session.execute(sa.update(User).values(last_seen=then))
            db.session.execute(sa.update(UserSession).values(last_seen=then))
            db.session.commit()
        with count_statements(app) as counter:
            assert client.get('/explore').status_code == 200
        return [s for s in counter.statements if s.startswith('UPDATE')]

    assert updates_after(timedelta(minutes=30)) == []
    written = updates_after(timedelta(hours=1, seconds=1))
    assert len(written) == 2 and any('user_session' in s for s in written)
    with app.app_context():
        recent = utcnow() - timedelta(minutes=5)
        assert db.session.scalar(sa.select(User.last_seen)) > recent
        assert db.session.scalar(sa.select(UserSession.last_seen)) > recent


def test_the_lifetimes_are_documented():
    for name in ('SESSION_IDLE_TIMEOUT', 'SESSION_MAX_AGE', 'LAST_SEEN_INTERVAL'):
        assert f'{name}=' in (ROOT / '.env.example').read_text(), name
        assert f'| `{name}` |' in (ROOT / 'README.md').read_text(), name
