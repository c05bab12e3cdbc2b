"""New browsers recognised by a device cookie, not by their brand, and
"Trust this browser" (issue 24, points 4 and 6)."""

import time
from datetime import timedelta

import sqlalchemy as sa

from app import db
from app.dbtypes import utcnow
from app.devices import KnownDevice
from app.models import User
from app.testing import PASSWORD, AuthActions
from app.testing.mfa import turn_on_authenticator

CHROME = {
    'User-Agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
    '(KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36'
}
WINDOW = {'REAUTH_WINDOW': 600}
NEW = 'a brand new passphrase'
NOTICE = 'New sign-in from a browser not seen before'


DOMAIN = 'microblog.test'


def device_cookie(client) -> str:
    return client.get_cookie('device', domain=DOMAIN).value


def notices(smtp, wait: float = 1.0) -> list:
    time.sleep(wait)  # the sender is a thread: give it time to send
    return [m for m in smtp.messages if NOTICE in m['Subject']]


def first_browser(app, smtp):
    client = app.test_client()
    AuthActions(client, smtp).register()
    AuthActions(client).login(headers=CHROME)
    return client


def test_the_cookie_is_long_lived_signed_and_http_only(make_app, smtp):
    app = make_app()
    client = app.test_client()
    AuthActions(client, smtp).register()
    response = AuthActions(client).login()
    header = next(
        h for h in response.headers.getlist('Set-Cookie') if h.startswith('device=')
    )
    assert 'HttpOnly' in header and 'SameSite=Lax' in header
    assert 'Max-Age=34560000' in header  # 400 days
    value = device_cookie(client)
    with app.app_context():
        stored = db.session.scalars(sa.select(KnownDevice.device_hash)).all()
    assert len(stored) == 1 and stored[0] not in value and '.' in value


def test_a_fresh_browser_of_the_same_brand_is_a_browser_not_seen_before(make_app, smtp):
    app = make_app()
    first = first_browser(app, smtp)
    first.post('/logout')
    AuthActions(first).login(headers=CHROME)  # the same browser: no notice
    assert notices(smtp) == []
    attacker = app.test_client()  # same browser and system, no cookie
    AuthActions(attacker).login(headers=CHROME)
    notice = smtp.take(NOTICE, 'susan@example.com')
    text = notice.get_body(('plain',)).get_content()
    assert 'Chrome 156 on Windows' in text
    assert 'Approximate address: 127.0.0.x' in text
    assert '/not_me/' in text


def test_a_forged_or_foreign_cookie_is_not_recognised(make_app, smtp):
    app = make_app()
    first = first_browser(app, smtp)
    value = device_cookie(first)
    forged = app.test_client()
    forged.set_cookie(
        'device', value[:-2] + ('AA' if value[-2:] != 'AA' else 'BB'), domain=DOMAIN
    )
    AuthActions(forged).login(headers=CHROME)
    smtp.take(NOTICE, 'susan@example.com')
    # bob's browser is known to bob's account, not to susan's.
    bobs = app.test_client()
    AuthActions(bobs, smtp).register('bob', 'bob@example.com')
    AuthActions(bobs).login('bob')
    bobs.post('/logout')
    AuthActions(bobs).login()
    smtp.take(NOTICE, 'susan@example.com')


def test_the_cookie_survives_a_key_rotation(make_app, smtp):
    app = make_app()
    first = first_browser(app, smtp)
    cookie = device_cookie(first)
    rotated = make_app(
        SECRET_KEY='a-new-secret-key-that-is-long-enough-for-hs256-11',
        SECRET_KEY_FALLBACKS=[app.config['SECRET_KEY']],
    )
    same = rotated.test_client()
    same.set_cookie('device', cookie, domain=DOMAIN)
    AuthActions(same).login(headers=CHROME)
    assert notices(smtp) == []


def test_new_browser_notices_stay_within_the_mail_budget(make_app, smtp):
    app = make_app(
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT='1000/minute',
        MAIL_BUDGETS={'notice_new_sign_in': '2/hour'},
    )
    first_browser(app, smtp)
    for _ in range(5):
        assert AuthActions(app.test_client()).login().status_code == 302
    smtp.wait_for(2)
    assert len(notices(smtp)) == 2


def two_factor_account(app, smtp):
    client = app.test_client()
    AuthActions(client, smtp).register()
    AuthActions(client).login()
    _, codes = turn_on_authenticator(client)
    client.post('/logout')
    return client, codes


def verify(app, client, codes, trust: bool):
    """Sign in with a recovery code (an app code would need a new time step
    for each sign-in: tests/test_two_factor.py covers those)."""
    assert AuthActions(client).login().location == '/login/verify'
    data = {'code': codes.pop()}
    if trust:
        data['trust'] = 'y'
    assert client.post('/login/verify', data=data).location == '/index'


def test_trust_this_browser_skips_the_second_step_here_only(make_app, smtp):
    app = make_app(**WINDOW)
    client, codes = two_factor_account(app, smtp)
    verify(app, client, codes, trust=False)  # off by default
    client.post('/logout')
    verify(app, client, codes, trust=True)
    client.post('/logout')
    assert AuthActions(client).login().location == '/index'  # skipped
    other = app.test_client()
    assert AuthActions(other).login().location == '/login/verify'
    with app.app_context():
        db.session.execute(
            sa.update(KnownDevice).values(trusted_until=utcnow() - timedelta(1))
        )
        db.session.commit()
    client.post('/logout')
    assert AuthActions(client).login().location == '/login/verify'  # expired


def trusted_browser(app, smtp):
    client, codes = two_factor_account(app, smtp)
    verify(app, client, codes, trust=True)
    return client, codes


def asks_again(client) -> bool:
    client.post('/logout')
    return AuthActions(client).login().location == '/login/verify'


def test_signing_the_browser_out_from_the_list_ends_its_trust(make_app, smtp):
    app = make_app(**WINDOW)
    laptop, codes = trusted_browser(app, smtp)
    phone = app.test_client()
    verify(app, phone, codes, trust=False)
    with app.app_context():
        db.session.execute(sa.text('UPDATE user_session SET proven_at = NULL'))
        db.session.commit()
    # "Sign out all other sessions" from the phone (with the password).
    phone.post('/sessions', data={'current_password': PASSWORD})
    assert asks_again(laptop)


def test_signing_out_one_session_ends_that_browsers_trust(make_app, smtp):
    app = make_app(**WINDOW)
    laptop, codes = trusted_browser(app, smtp)
    phone = app.test_client()
    verify(app, phone, codes, trust=False)
    page = phone.get('/sessions').get_data(as_text=True)
    ids = [int(p.split('"')[0]) for p in page.split('name="session" value="')[1:]]
    for session_id in ids:  # the laptop's row (the phone's is newer, listed first)
        if session_id != max(ids):
            phone.post('/sessions', data={'session': str(session_id)})
    assert asks_again(laptop)


def test_a_password_change_ends_every_trust(make_app, smtp):
    app = make_app(**WINDOW)
    laptop, _ = trusted_browser(app, smtp)
    changed = laptop.post('/change_password', data={'password': NEW, 'password2': NEW})
    assert changed.location == '/settings'
    laptop.post('/logout')
    assert AuthActions(laptop).login(password=NEW).location == '/login/verify'


def test_a_password_reset_ends_every_trust(make_app, smtp):
    app = make_app(**WINDOW)
    laptop, _ = trusted_browser(app, smtp)
    laptop.post('/logout')
    laptop.post('/reset_password_request', data={'email': 'susan@example.com'})
    message = smtp.take('Reset Your Password', 'susan@example.com')
    text = message.get_body(('plain',)).get_content()
    path = '/reset_password/' + text.split('/reset_password/')[1].split()[0]
    laptop.get(path)
    laptop.post(
        '/reset_password/set-password', data={'password': NEW, 'password2': NEW}
    )
    assert AuthActions(laptop).login(password=NEW).location == '/login/verify'


def test_this_wasnt_me_ends_every_trust(make_app, smtp):
    app = make_app(**WINDOW)
    laptop, _ = trusted_browser(app, smtp)
    with app.app_context():
        token = User.by_username('susan').make_token('not_me', 3600)
    owner = app.test_client()
    owner.get(f'/not_me/{token}')
    assert owner.post('/not_me/confirm').location == '/login'
    assert laptop.get('/index').status_code == 302  # signed out
    assert AuthActions(laptop).login().location == '/login/verify'
