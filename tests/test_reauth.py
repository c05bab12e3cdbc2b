"""Re-authentication ("sudo mode", issue 24 point 1): a sensitive change
needs a proof of identity made in this session within REAUTH_WINDOW."""

from datetime import timedelta

import sqlalchemy as sa

from app import db
from app.dbtypes import utcnow
from app.sessions import UserSession
from app.testing import PASSWORD, AuthActions

NEW = 'a fresh passphrase'
WINDOW = {'REAUTH_WINDOW': 600}


def signed_in(app, smtp, username='susan'):
    client = app.test_client()
    auth = AuthActions(client, smtp)
    auth.register(username, f'{username}@example.com')
    assert auth.login(username).status_code == 302
    return client


def age_proofs(app, seconds: int = 3600) -> None:
    """Every session's last proof, `seconds` ago (the window has passed)."""
    with app.app_context():
        db.session.execute(
            sa.update(UserSession).values(
                proven_at=utcnow() - timedelta(seconds=seconds)
            )
        )
        db.session.commit()


def test_signing_in_is_a_proof_so_the_password_is_not_asked_again(make_app, smtp):
    app = make_app(**WINDOW)
    client = signed_in(app, smtp)
    page = client.get('/change_password').get_data(as_text=True)
    assert 'name="current_password"' not in page
    response = client.post('/change_password', data={'password': NEW, 'password2': NEW})
    assert response.status_code == 302
    assert AuthActions(app.test_client()).login(password=NEW).status_code == 302


def test_after_the_window_the_form_asks_again_and_a_right_answer_is_a_proof(
    make_app, smtp
):
    app = make_app(**WINDOW)
    client = signed_in(app, smtp)
    age_proofs(app)
    page = client.get('/sessions').get_data(as_text=True)
    assert 'name="current_password"' in page
    refused = client.post('/change_email', data={'email': 'new@example.com'})
    assert refused.status_code == 200 and b'This field is required' in refused.data
    wrong = client.post(
        '/change_email',
        data={'email': 'new@example.com', 'current_password': 'not my password'},
    )
    assert b'That is not your current password.' in wrong.data
    right = client.post(
        '/change_email',
        data={'email': 'new@example.com', 'current_password': PASSWORD},
    )
    assert right.status_code == 302
    # That answer proved it: the next change does not ask.
    assert b'name="current_password"' not in client.get('/change_password').data


def test_reauthenticate_then_return_to_the_page(make_app, smtp):
    app = make_app(**WINDOW)
    client = signed_in(app, smtp)
    age_proofs(app)
    page = client.get('/reauthenticate?next=/change_password')
    assert page.status_code == 200 and b'name="current_password"' in page.data
    assert b'name="code"' not in page.data  # no authenticator: password only
    empty = client.post('/reauthenticate?next=/change_password', data={})
    assert b'Enter your password.' in empty.data
    wrong = client.post(
        '/reauthenticate?next=/change_password',
        data={'current_password': 'not my password'},
    )
    assert wrong.status_code == 200
    assert b'That is not your current password.' in wrong.data
    right = client.post(
        '/reauthenticate?next=/change_password', data={'current_password': PASSWORD}
    )
    assert right.status_code == 302 and right.location == '/change_password'
    assert b'name="current_password"' not in client.get('/change_password').data


def test_reauthenticate_never_sends_the_browser_off_site(make_app, smtp):
    app = make_app(**WINDOW)
    client = signed_in(app, smtp)
    for target in ('//evil.example/', 'https://evil.example/', '/\\evil.example'):
        response = client.post(
            '/reauthenticate',
            query_string={'next': target},
            data={'current_password': PASSWORD},
        )
        assert response.location == '/settings'


def test_the_proof_belongs_to_one_session(make_app, smtp):
    app = make_app(**WINDOW)
    old = signed_in(app, smtp)
    age_proofs(app)
    fresh = app.test_client()
    assert AuthActions(fresh).login().status_code == 302
    assert b'name="current_password"' in old.get('/sessions').data
    assert b'name="current_password"' not in fresh.get('/sessions').data
    # Signing out all others needs no password in the proven session.
    response = fresh.post('/sessions', data={})
    assert response.status_code == 302
    assert old.get('/settings').status_code == 302  # signed out


def test_wrong_passwords_on_reauthenticate_share_the_account_budget(make_app, smtp):
    app = make_app(
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT='1000/minute',
        PASSWORD_GUESS_BUDGET='3/15minutes',
        **WINDOW,
    )
    client = signed_in(app, smtp)
    age_proofs(app)
    wrong = {'current_password': 'not my password'}
    assert client.post('/reauthenticate', data=wrong).status_code == 200
    change = {**wrong, 'password': NEW, 'password2': NEW}
    assert client.post('/change_password', data=change).status_code == 200
    spent = client.post('/reauthenticate', data=wrong)
    assert spent.status_code == 302 and '/login' in spent.location
    assert client.get('/settings').status_code == 302  # this session ended
    smtp.take('Too many wrong passwords', 'susan@example.com')


def test_the_window_is_configurable_and_kept_on_the_server(make_app, smtp):
    app = make_app(REAUTH_WINDOW=60)
    client = signed_in(app, smtp)
    assert b'name="current_password"' not in client.get('/change_email').data
    age_proofs(app, 61)
    assert b'name="current_password"' in client.get('/change_email').data
    with app.app_context():
        proofs = db.session.scalars(sa.select(UserSession.proven_at)).all()
    assert all(p is not None for p in proofs)  # kept on the server
