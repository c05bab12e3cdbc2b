"""The authenticator app and the second sign-in step (issue 24, points 2,
4 and 5): TOTP codes computed here with pyotp, as a phone would."""

import threading
from datetime import timedelta

import pyotp
import sqlalchemy as sa

from app import db
from app.dbtypes import utcnow
from app.mfa.models import Authenticator, PendingSignIn
from app.models import User
from app.testing import AuthActions
from app.testing.data import make_user
from app.testing.mfa import fresh_code, totp_now, turn_on_authenticator

WINDOW = {'REAUTH_WINDOW': 600}
NEW = 'a brand new passphrase'


def signed_in(app, smtp, confirm=True):
    client = app.test_client()
    auth = AuthActions(client, smtp)
    if confirm:
        auth.register()
    else:  # an unconfirmed account, as made before pending sign-ups
        with app.app_context():
            make_user().email_confirmed = False
            db.session.commit()
    assert auth.login().status_code == 302
    return client


def with_authenticator(app, smtp):
    """susan, signed in with the authenticator on; (client, secret, codes)."""
    client = signed_in(app, smtp)
    secret, codes = turn_on_authenticator(client)
    smtp.take('An authenticator app was added', 'susan@example.com')
    return client, secret, codes


def authenticator(app) -> Authenticator | None:
    with app.app_context():
        return db.session.scalar(sa.select(Authenticator))


def test_setup_shows_the_secret_as_qr_and_text_and_turns_on_after_a_code(
    make_app, smtp
):
    app = make_app(**WINDOW)
    client = signed_in(app, smtp)
    assert (
        b'<span class="badge text-bg-secondary">Off</span>'
        in client.get('/two_factor').data
    )
    page = client.get('/two_factor/setup').get_data(as_text=True)
    assert '<svg aria-hidden="true"' in page and 'role="img"' in page
    assert 'otpauth://totp/Microblog:susan?secret=' in page
    assert 'issuer=Microblog' in page
    assert authenticator(app) is None  # nothing stored before a right code
    secret = pyotp.parse_uri(page.split('<code class="text-break">')[1].split('<')[0]
                             .replace('&amp;', '&')).secret  # fmt: skip
    wrong = client.post('/two_factor/setup', data={'code': '000000'})
    assert b'That code is not right' in wrong.data
    assert authenticator(app) is None
    done = client.post('/two_factor/setup', data={'code': totp_now(secret)})
    assert b'The authenticator app is on.' in done.data
    assert authenticator(app) is not None
    notice = smtp.take('An authenticator app was added', 'susan@example.com')
    text = notice.get_body(('plain',)).get_content()
    assert 'When:' in text and 'Approximate address:' in text
    assert '/not_me/' in text
    assert (
        b'<span class="badge text-bg-success">On</span>'
        in client.get('/two_factor').data
    )


def test_the_secret_is_stored_sealed_and_survives_a_key_rotation(make_app, smtp):
    app = make_app(**WINDOW)
    client, secret, _ = with_authenticator(app, smtp)
    stored = authenticator(app).secret
    assert stored.startswith('v1:') and secret not in stored
    client.post('/logout')
    rotated = make_app(
        SECRET_KEY='a-new-secret-key-that-is-long-enough-for-hs256-11',
        SECRET_KEY_FALLBACKS=[app.config['SECRET_KEY']],
        **WINDOW,
    )
    other = rotated.test_client()
    assert AuthActions(other).login().location == '/login/verify'
    response = other.post('/login/verify', data={'code': fresh_code(app, secret)})
    assert response.status_code == 302 and response.location == '/index'
    assert authenticator(app).secret != stored  # sealed again under the new key


def test_an_unconfirmed_account_cannot_turn_it_on(make_app, smtp):
    app = make_app(**WINDOW)
    client = signed_in(app, smtp, confirm=False)
    response = client.get('/two_factor/setup')
    assert response.status_code == 302 and response.location == '/two_factor'
    assert b'Confirm your email address first' in client.get('/two_factor').data
    assert client.post('/two_factor/setup', data={'code': '123456'}).status_code == 302
    assert authenticator(app) is None


def test_signing_in_asks_for_a_code_and_nothing_is_signed_in_before(make_app, smtp):
    app = make_app(**WINDOW)
    client, secret, _ = with_authenticator(app, smtp)
    client.post('/logout')
    response = AuthActions(client).login(query_string={'next': '/explore'})
    assert response.status_code == 302 and response.location == '/login/verify'
    assert client.get('/index').status_code == 302  # not signed in yet
    page = client.get('/login/verify')
    assert (
        b'name="code"' in page.data and b'Trust this browser for 30 days' in page.data
    )
    wrong = client.post('/login/verify', data={'code': '000000'})
    assert wrong.status_code == 200 and b'That code is not right' in wrong.data
    right = client.post('/login/verify', data={'code': fresh_code(app, secret)})
    assert right.status_code == 302 and right.location == '/explore'
    assert client.get('/index').status_code == 200


def test_a_code_is_accepted_once_and_one_step_of_drift_either_way(make_app, smtp):
    app = make_app(**WINDOW)
    _, secret, _ = with_authenticator(app, smtp)
    totp = pyotp.TOTP(secret)
    with app.app_context():
        row = db.session.scalar(sa.select(Authenticator))
        now = utcnow() + timedelta(minutes=10)  # steps no code was used in
        step = totp.timecode(now)
        assert not row.verify(totp.generate_otp(step - 2), at=now)  # too old
        assert not row.verify(totp.generate_otp(step + 2), at=now)  # too new
        assert row.verify(totp.generate_otp(step - 1), at=now)  # behind by one
        assert not row.verify(totp.generate_otp(step - 1), at=now)  # replayed
        assert row.verify(totp.generate_otp(step + 1), at=now)  # ahead by one
        # Older codes, even unused, are refused once a later one was used.
        assert not row.verify(totp.generate_otp(step), at=now)
        db.session.commit()
        assert db.session.scalar(sa.select(Authenticator.last_step)) == step + 1


def test_a_replayed_code_is_refused_at_sign_in(make_app, smtp):
    app = make_app(**WINDOW)
    client, secret, _ = with_authenticator(app, smtp)
    client.post('/logout')
    code = fresh_code(app, secret)
    AuthActions(client).login()
    assert client.post('/login/verify', data={'code': code}).status_code == 302
    thief = app.test_client()  # saw the code over the shoulder
    AuthActions(thief).login()
    refused = thief.post('/login/verify', data={'code': code})
    assert refused.status_code == 200 and b'That code is not right' in refused.data


def test_the_pending_step_expires_and_belongs_to_one_browser(make_app, smtp):
    app = make_app(**WINDOW)
    client, secret, _ = with_authenticator(app, smtp)
    client.post('/logout')
    AuthActions(client).login()
    other = app.test_client()  # no pending step in this browser
    response = other.get('/login/verify')
    assert response.status_code == 302 and response.location == '/login'
    with app.app_context():
        db.session.execute(
            sa.update(PendingSignIn).values(created_at=utcnow() - timedelta(minutes=6))
        )
        db.session.commit()
    late = client.post('/login/verify', data={'code': fresh_code(app, secret)})
    assert late.status_code == 302 and late.location == '/login'
    assert b'That sign-in took too long' in client.get('/login').data
    assert client.get('/index').status_code == 302


def test_wrong_codes_count_against_the_account_budget_and_the_client(make_app, smtp):
    app = make_app(
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT='1000/minute',
        PASSWORD_GUESS_BUDGET='3/15minutes',
        **WINDOW,
    )
    client, secret, _ = with_authenticator(app, smtp)
    client.post('/logout')
    thief = app.test_client()  # knows the password, not the phone
    AuthActions(thief).login()
    for _ in range(2):
        assert thief.post('/login/verify', data={'code': '111111'}).status_code == 200
    spent = thief.post('/login/verify', data={'code': '111111'})
    assert spent.status_code == 302 and spent.location == '/login'
    assert b'Too many wrong codes' in thief.get('/login').data
    smtp.take('Too many wrong passwords', 'susan@example.com')
    # The step is gone: even the right code needs a new sign-in.
    assert thief.post('/login/verify', data={'code': '123456'}).location == '/login'
    # The budget is the account's, shared with the password forms.
    AuthActions(thief).login()
    right = thief.post('/login/verify', data={'code': fresh_code(app, secret)})
    assert right.status_code == 302 and right.location == '/login'


def test_wrong_codes_count_against_the_clients_sign_in_limit(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT='3/minute', **WINDOW)
    client, _, _ = with_authenticator(app, smtp)
    client.post('/logout')
    assert AuthActions(client).login().status_code == 302  # refunded
    assert client.post('/login/verify', data={'code': '111111'}).status_code == 200
    assert client.post('/login/verify', data={'code': '222222'}).status_code == 200
    assert client.post('/login/verify', data={'code': '333333'}).status_code == 200
    assert client.post('/login/verify', data={'code': '444444'}).status_code == 429


def test_a_password_reset_does_not_remove_or_bypass_the_factor(make_app, smtp):
    app = make_app(**WINDOW)
    client, secret, _ = with_authenticator(app, smtp)
    client.post('/logout')
    with app.app_context():
        token = User.by_username('susan').get_reset_password_token()
    client.get(f'/reset_password/{token}')
    done = client.post(
        '/reset_password/set-password', data={'password': NEW, 'password2': NEW}
    )
    assert done.status_code == 302 and done.location == '/login'
    assert authenticator(app) is not None
    response = AuthActions(client).login(password=NEW)
    assert response.location == '/login/verify'
    assert client.get('/index').status_code == 302
    right = client.post('/login/verify', data={'code': fresh_code(app, secret)})
    assert right.location == '/index'


def test_turning_it_off_needs_a_recent_proof_and_sends_a_notice(make_app, smtp):
    app = make_app(**WINDOW)
    client, secret, _ = with_authenticator(app, smtp)
    with app.app_context():
        db.session.execute(sa.text('UPDATE user_session SET proven_at = NULL'))
        db.session.commit()
    response = client.post('/two_factor/disable')
    assert response.location == '/reauthenticate?next=/two_factor/disable'
    assert authenticator(app) is not None
    page = client.get(response.location)
    assert b'name="code"' in page.data  # the authenticator is a proof too
    wrong = client.post(response.location, data={'code': '000000'})
    assert b'That code is not right' in wrong.data
    proven = client.post(response.location, data={'code': fresh_code(app, secret)})
    assert proven.location == '/two_factor/disable'
    assert b'Turn off the authenticator app' in client.get(proven.location).data
    client.post('/two_factor/disable')
    assert authenticator(app) is None
    smtp.take('The authenticator app was removed', 'susan@example.com')
    client.post('/logout')
    assert AuthActions(client).login().location == '/index'  # password only


def test_setup_and_recovery_pages_need_a_recent_proof(make_app, smtp):
    app = make_app(**WINDOW)
    client = signed_in(app, smtp)
    with app.app_context():
        db.session.execute(sa.text('UPDATE user_session SET proven_at = NULL'))
        db.session.commit()
    for path in ('/two_factor/setup', '/recovery_codes'):
        response = client.get(path)
        assert response.location == f'/reauthenticate?next={path}'
    assert client.get('/two_factor').status_code == 200  # the state is not secret


def test_an_operator_can_remove_the_factors_audited_and_noticed(make_app, smtp, caplog):
    app = make_app(**WINDOW)
    client, _, codes = with_authenticator(app, smtp)
    client.post('/logout')
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=['account', 'reset-two-factor', 'nobody', '--yes'])
    assert unknown.exit_code != 0 and "no account named 'nobody'" in unknown.output
    declined = runner.invoke(args=['account', 'reset-two-factor', 'susan'], input='n\n')
    assert declined.exit_code != 0 and authenticator(app) is not None
    result = runner.invoke(
        args=['account', 'reset-two-factor', 'susan', '--yes', '--reason', 'ticket 42']
    )
    assert result.exit_code == 0, result.output
    assert 'Removed the second factor of susan' in result.output
    assert authenticator(app) is None
    assert any(
        'two_factor_reset_by_operator' in r.getMessage()
        and 'ticket 42' in r.getMessage()
        for r in caplog.records
    )
    notice = smtp.take('Your second factor was removed by an operator',
                       'susan@example.com')  # fmt: skip
    text = notice.get_body(('plain',)).get_content()
    assert 'Browser: an operator' in text and '/not_me/' in text
    assert AuthActions(client).login().location == '/index'  # password only
    client.post('/logout')
    assert (
        b'That code is not right'
        not in client.post('/login/verify', data={'code': codes[0]}).data
    )  # no step pending: back to the sign-in page
    again = runner.invoke(args=['account', 'reset-two-factor', 'susan', '--yes'])
    assert 'has no second factor' in again.output


def race(clients, data: dict) -> list:
    """Post `data` to /login/verify from every client at the same instant;
    [(client, response)]."""
    barrier = threading.Barrier(len(clients))
    answers = []

    def post(client):
        barrier.wait()
        answers.append((client, client.post('/login/verify', data=data)))

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def test_one_code_posted_at_once_from_two_browsers_signs_in_once(make_app, smtp):
    app = make_app(**WINDOW)
    client, secret, codes = with_authenticator(app, smtp)
    client.post('/logout')
    browsers = [app.test_client() for _ in range(4)]
    for browser in browsers:
        assert AuthActions(browser).login().location == '/login/verify'
    answers = race(browsers, {'code': fresh_code(app, secret)})
    assert sorted(r.status_code for _, r in answers) == [200, 200, 200, 302]
    waiting = [c for c, r in answers if r.status_code == 200]
    answers = race(waiting, {'code': codes[0]})  # a recovery code too
    assert sorted(r.status_code for _, r in answers) == [200, 200, 302]


def test_a_key_changed_without_fallback_refuses_codes_without_a_500(
    make_app, smtp, caplog
):
    app = make_app(**WINDOW)
    client, secret, codes = with_authenticator(app, smtp)
    client.post('/logout')
    careless = make_app(
        SECRET_KEY='a-new-secret-key-that-is-long-enough-for-hs256-11', **WINDOW
    )
    other = careless.test_client()
    AuthActions(other).login()
    refused = other.post('/login/verify', data={'code': fresh_code(app, secret)})
    assert refused.status_code == 200 and b'That code is not right' in refused.data
    assert any('SECRET_KEY_FALLBACKS' in r.getMessage() for r in caplog.records)
    assert other.post('/login/verify', data={'code': codes[0]}).location == '/index'


def test_turning_it_on_signs_out_the_accounts_other_sessions(make_app, smtp):
    """A session from before the second factor (a password thief's) cannot
    stay, nor prove itself with the password and turn the factor off."""
    app = make_app(**WINDOW)
    thief = app.test_client()
    client = signed_in(app, smtp)
    assert AuthActions(thief).login().status_code == 302
    turn_on_authenticator(client)
    assert thief.get('/index').status_code == 302  # signed out on the server
    assert client.get('/index').status_code == 200


def test_codes_in_other_scripts_digits_are_a_wrong_code_not_a_500(make_app, smtp):
    app = make_app(**WINDOW)
    client, _, _ = with_authenticator(app, smtp)
    arabic = '\u0661\u0662\u0663\u0664\u0665\u0666'  # ١٢٣٤٥٦
    client.post('/logout')
    AuthActions(client).login()
    assert client.post('/login/verify', data={'code': arabic}).status_code == 200
