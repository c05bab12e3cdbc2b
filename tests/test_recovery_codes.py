"""Recovery codes (issue 24, point 3): ten single-use codes shown once,
stored hashed; renewing them kills the old ones; using one sends a notice
saying how many are left."""

import re

import pyotp
import sqlalchemy as sa

from app import db
from app.mfa.models import RecoveryCode
from app.testing import AuthActions
from app.testing.mfa import turn_on_authenticator

WINDOW = {'REAUTH_WINDOW': 600}


def with_codes(app, smtp):
    client = app.test_client()
    auth = AuthActions(client, smtp)
    auth.register()
    auth.login()
    secret, codes = turn_on_authenticator(client)
    smtp.take('An authenticator app was added', 'susan@example.com')
    return client, secret, codes


def sign_in_with(client, code: str):
    AuthActions(client).login()
    return client.post('/login/verify', data={'code': code})


def test_ten_codes_shown_once_in_two_groups_of_five_and_stored_hashed(make_app, smtp):
    app = make_app(**WINDOW)
    client, _, codes = with_codes(app, smtp)
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r'[a-z0-9]{5}-[a-z0-9]{5}', code) for code in codes)
    with app.app_context():
        stored = db.session.scalars(sa.select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10
    assert not any(code.replace('-', '') in h or code in h for code in codes
                   for h in stored)  # fmt: skip
    page = client.get('/recovery_codes').get_data(as_text=True)
    assert '<strong>10</strong> of 10' in page
    assert not any(code in page for code in codes)  # never shown again


def test_the_page_offers_download_as_text_and_print(make_app, smtp):
    app = make_app(**WINDOW)
    client = app.test_client()
    AuthActions(client, smtp).register()
    AuthActions(client).login()
    page = client.get('/two_factor/setup').get_data(as_text=True)
    secret = re.search(r'id="secret">([A-Z2-7]+)<', page)[1]
    shown = client.post('/two_factor/setup', data={'code': pyotp.TOTP(secret).now()})
    html = shown.get_data(as_text=True)
    assert 'download="microblog-recovery-codes.txt"' in html
    assert 'href="data:text/plain;charset=utf-8,' in html
    assert 'data-print' in html


def test_a_code_signs_in_once_and_the_notice_says_how_many_are_left(make_app, smtp):
    app = make_app(**WINDOW)
    client, _, codes = with_codes(app, smtp)
    client.post('/logout')
    typed = codes[3].upper().replace('-', ' ')  # as people type them
    response = sign_in_with(client, typed)
    assert response.status_code == 302 and response.location == '/index'
    notice = smtp.take('A recovery code was used to sign in', 'susan@example.com')
    text = notice.get_body(('plain',)).get_content()
    assert '9 of 10 are left' in text and '/not_me/' in text
    client.post('/logout')
    again = sign_in_with(client, codes[3])
    assert again.status_code == 200 and b'That code is not right' in again.data
    assert b'9</strong> of 10' not in again.data


def test_new_codes_replace_every_old_one(make_app, smtp):
    app = make_app(**WINDOW)
    client, _, old = with_codes(app, smtp)
    page = client.post('/recovery_codes', data={})
    new = re.findall(r'<li>([a-z0-9]{5}-[a-z0-9]{5})</li>', page.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert b'Your earlier codes no longer work.' in page.data
    smtp.take('New recovery codes were made', 'susan@example.com')
    client.post('/logout')
    assert sign_in_with(client, old[0]).status_code == 200  # dead
    assert sign_in_with(client, new[0]).location == '/index'


def test_recovery_codes_are_not_an_authenticator_code_for_reauthentication(
    make_app, smtp
):
    app = make_app(**WINDOW)
    client, _, codes = with_codes(app, smtp)
    with app.app_context():
        db.session.execute(sa.text('UPDATE user_session SET proven_at = NULL'))
        db.session.commit()
    response = client.post('/reauthenticate', data={'code': codes[0]})
    assert response.status_code == 200 and b'That code is not right' in response.data
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(
            RecoveryCode.used_at.is_not(None))) == 0  # fmt: skip
