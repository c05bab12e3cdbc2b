"""The security log (issue 26 point 4): every security event of an account
stored with the change it records, listed for its owner for 90 days, newest
first and paged; each notice links to its event; old events pruned."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import db, security_log
from app.dbtypes import utcnow
from app.models import User
from app.passkeys.models import Passkey
from app.security_log import SecurityEvent
from app.testing import PASSWORD, AuthActions
from app.testing.links import emailed_path, use_link
from app.testing.mfa import turn_on_authenticator
from app.testing.passkeys import PASSKEY_APP, SoftAuthenticator, add_passkey

CHROME = {
    'User-Agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
    '(KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36'
}
NEW = 'a fresh passphrase'
LOG_LINK = re.compile(r'https?://[^\s"<]+/security_log/(\d+)')


def events(app, username='susan') -> list[str]:
    """The account's events in the database, newest first."""
    with app.app_context():
        user = User.by_username(username)
        return [e.event for e in db.session.scalars(security_log.events_of(user))]


def signed_in(app, smtp, username='susan', **kw):
    client = app.test_client()
    auth = AuthActions(client, smtp)
    auth.register(username, f'{username}@example.com')
    assert auth.login(username, **kw).status_code == 302
    return client


def test_sign_ins_and_failed_ones_are_listed_newest_first(app, smtp):
    auth = AuthActions(app.test_client(), smtp)
    auth.register()
    assert auth.login(password='not my password').status_code == 200
    assert auth.login(headers=CHROME).status_code == 302
    assert events(app) == ['login', 'login_failed']
    page = auth.client.get('/security_log').get_data(as_text=True)
    signed = page.index('Signed in')
    failed = page.index('A sign-in failed: wrong password')
    assert signed < failed
    assert 'Chrome on Windows' in page and '127.0.0.x' in page


def test_a_sign_in_limit_reached_is_logged_once(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_ACCOUNT_LIMIT='2/hour')
    auth = AuthActions(app.test_client(), smtp)
    auth.register()
    for _ in range(2):
        auth.login(password='wrong')
    assert auth.login(password='wrong').status_code == 429
    assert events(app) == ['login_limit_reached', 'login_failed', 'login_failed']


def test_changes_are_logged_and_their_notice_links_to_the_event(app, smtp):
    client = signed_in(app, smtp)
    data = {'current_password': PASSWORD, 'password': NEW, 'password2': NEW}
    assert client.post('/change_password', data=data).status_code == 302
    notice = smtp.take('Your password was changed', 'susan@example.com')
    text = notice.get_body(('plain',)).get_content()
    event_id = LOG_LINK.search(text)[1]
    assert f'/security_log/{event_id}' in notice.get_body(('html',)).get_content()
    page = client.get(f'/security_log/{event_id}')
    assert page.status_code == 200 and b'Password changed' in page.data
    # Nobody else can read it.
    other = signed_in(app, smtp, 'john')
    assert other.get(f'/security_log/{event_id}').status_code == 404
    assert other.get('/security_log/999999').status_code == 404


def test_email_change_sessions_and_reset_are_logged(app, smtp):
    client = signed_in(app, smtp)
    AuthActions(app.test_client(), smtp).login()
    client.post('/change_email', data={'email': 'new@example.com',
                                       'current_password': PASSWORD})  # fmt: skip
    client.post('/sessions', data={'current_password': PASSWORD})
    client.post('/logout')
    data = {'email': 'susan@example.com'}
    client.post('/reset_password_request', data=data, headers=CHROME)
    smtp.take('Reset Your Password', 'susan@example.com')
    with app.app_context():
        asked = db.session.scalar(
            sa.select(SecurityEvent).where(SecurityEvent.event == 'reset_email_queued')
        )
        # Recorded by the mail sender, with where the request came from.
        assert (asked.browser, asked.address) == ('Chrome on Windows', '127.0.0.x')
    assert events(app)[:3] == ['reset_email_queued', 'sessions_revoked',
                               'email_change_requested']  # fmt: skip


def test_an_event_is_stored_only_with_its_change(app, smtp, monkeypatch):
    """Written in the change's transaction: a change that fails leaves no
    event, and no event is written without its change."""
    client = signed_in(app, smtp)

    def broken(*args, **kwargs):
        raise RuntimeError('mail queue down')

    monkeypatch.setattr('app.account.routes.queue_notice', broken)
    data = {'current_password': PASSWORD, 'password': NEW, 'password2': NEW}
    with pytest.raises(RuntimeError):
        client.post('/change_password', data=data)
    assert 'password_changed' not in events(app)
    assert AuthActions(app.test_client()).login(password=NEW).status_code == 200


def test_the_log_is_paged_and_keeps_ninety_days(app, smtp):
    client = signed_in(app, smtp)
    with app.app_context():
        user = User.by_username('susan')
        now = utcnow()
        for minutes in range(1, 31):
            db.session.add(
                SecurityEvent(
                    user_id=user.id,
                    event='session_revoked',
                    created_at=now - timedelta(minutes=minutes),
                )
            )
        db.session.add(
            SecurityEvent(
                user_id=user.id, event='export', created_at=now - timedelta(days=91)
            )
        )
        db.session.commit()
    first = client.get('/security_log').get_data(as_text=True)
    assert first.count('id="event-') == 25 and 'Older events' in first
    assert first.index('Signed in') < first.index('A session was signed out')
    second = client.get('/security_log?page=2').get_data(as_text=True)
    assert second.count('id="event-') == 6  # 30 + the sign-in - 25
    assert 'Your data was downloaded' not in second and 'Newer events' in second
    for page in ('x', '-3', '0', str(10**30)):
        assert client.get(f'/security_log?page={page}').status_code == 200
    with app.app_context():
        assert security_log.prune() == 1
        db.session.commit()
        old = sa.select(SecurityEvent).where(SecurityEvent.event == 'export')
        assert db.session.scalar(old) is None


def test_the_log_needs_a_sign_in(client):
    response = client.get('/security_log')
    assert response.status_code == 302 and '/login' in response.location


def test_factor_changes_and_a_new_browser_are_logged_with_their_notices(make_app, smtp):
    app = make_app(REAUTH_WINDOW=600)
    client = signed_in(app, smtp)
    turn_on_authenticator(client)
    notice = smtp.take('An authenticator app was added', 'susan@example.com')
    event_id = LOG_LINK.search(notice.get_body(('plain',)).get_content())[1]
    assert b'Authenticator app added' in client.get(f'/security_log/{event_id}').data
    client.post('/two_factor/disable')
    smtp.take('The authenticator app was removed', 'susan@example.com')
    laptop = AuthActions(app.test_client())
    assert laptop.login(headers=CHROME).status_code == 302
    notice = smtp.take('New sign-in from a browser', 'susan@example.com')
    event_id = LOG_LINK.search(notice.get_body(('plain',)).get_content())[1]
    page = client.get(f'/security_log/{event_id}').get_data(as_text=True)
    assert 'Signed in from a new browser' in page and 'Chrome on Windows' in page
    assert events(app)[:4] == [
        'login',
        'new_browser_notice',
        'authenticator_removed',
        'authenticator_added',
    ]


def test_the_email_changed_notice_links_to_its_event(app, smtp):
    client = signed_in(app, smtp)
    data = {'email': 'new@example.com', 'current_password': PASSWORD}
    assert client.post('/change_email', data=data).status_code == 302
    confirm = smtp.take('Confirm your new email address', 'new@example.com')
    assert use_link(client, emailed_path(confirm)).status_code == 302
    notice = smtp.take('Your email address was changed', 'susan@example.com')
    for part in ('plain', 'html'):
        text = notice.get_body((part,)).get_content()
        event_id = LOG_LINK.search(text)[1]
    page = client.get(f'/security_log/{event_id}')
    assert b'Email address changed' in page.data


def test_a_passkey_added_or_removed_is_logged_and_its_notice_links_to_it(
    make_app, smtp
):
    app = make_app(**PASSKEY_APP)
    client = signed_in(app, smtp)
    assert add_passkey(client, SoftAuthenticator()).status_code == 302
    added = smtp.take('A passkey was added', 'susan@example.com')
    event_id = LOG_LINK.search(added.get_body(('plain',)).get_content())[1]
    assert b'Passkey added' in client.get(f'/security_log/{event_id}').data
    with app.app_context():
        (passkey,) = Passkey.list_for(User.by_username('susan'))
    assert client.post(f'/passkeys/{passkey.id}/remove').status_code == 302
    removed = smtp.take('A passkey was removed', 'susan@example.com')
    event_id = LOG_LINK.search(removed.get_body(('html',)).get_content())[1]
    assert b'Passkey removed' in client.get(f'/security_log/{event_id}').data
    assert events(app)[:2] == ['passkey_removed', 'passkey_added']
