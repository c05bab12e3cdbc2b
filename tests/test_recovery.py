"""The password reset: request, emailed link, new password; its throttle,
races, audit trail and the pages for dead links."""

import json
import logging
import re
import threading
import time
from datetime import UTC, datetime

import jwt
import pytest

from app import db
from app.models import User
from app.testing import PASSWORD, AuthActions
from app.testing.data import NEW_PASSWORD, make_user
from app.testing.links import LINK, reset_link, reset_token_for
from app.testing.outbox import outbox_rows, wait_until


def test_reset_flow_end_to_end(client, auth, app, smtp, caplog):
    caplog.set_level(logging.INFO)
    auth.register(email='Susan@Example.com')
    response = client.post(
        '/reset_password_request', data={'email': 'SUSAN@example.COM'}
    )
    assert response.status_code == 302
    assert response.location == '/reset_password_request/sent'
    page = client.get('/reset_password_request/sent').data
    assert b'Check your email for the instructions to reset your password' in page

    (message,) = smtp.wait_for(1)
    assert message['Subject'] == '[Microblog] Reset Your Password'
    assert message['To'] == 'susan@example.com'  # the stored address
    assert message.get_body(('html',)) is not None
    link = reset_link(message)
    assert link.startswith('https://microblog.test/reset_password/')
    html = message.get_body(('html',)).get_content()
    assert link in html

    path = link.removeprefix('https://microblog.test')
    response = client.get(path)
    # The token leaves the address bar at once.
    assert response.status_code == 302
    assert response.location == '/reset_password/set-password'
    assert response.headers['Referrer-Policy'] == 'no-referrer'
    page = client.get('/reset_password/set-password')
    assert page.status_code == 200 and b'Choose a new password' in page.data
    assert page.headers['Cache-Control'] == 'no-store'
    token = path.rsplit('/', 1)[1]
    assert token.encode() not in page.data

    response = client.post(
        '/reset_password/set-password',
        data={'password': NEW_PASSWORD, 'password2': NEW_PASSWORD},
    )
    assert response.status_code == 302 and response.location == '/login'
    assert auth.login(password=PASSWORD).status_code == 200
    assert auth.login(password=NEW_PASSWORD).status_code == 302
    auth.logout()

    # The notice email: no link to reset, advice if it was not them.
    (_, notice) = smtp.wait_for(2)
    assert notice['To'] == 'susan@example.com'
    assert 'password was changed' in notice['Subject']
    notice_text = notice.get_body(('plain',)).get_content()
    assert 'If it was not you' in notice_text
    assert notice.get_body(('html',)) is not None
    assert not LINK.search(notice_text)

    # The link is single-use, and says so.
    client.get(path)
    response = client.get('/reset_password/set-password')
    assert response.status_code == 302
    assert response.location == '/reset_password_problem/used'
    response = client.post(
        '/reset_password/set-password',
        data={
            'password': 'yet another passphrase',
            'password2': 'yet another passphrase',
        },
    )
    assert response.status_code == 302
    assert auth.login(password=NEW_PASSWORD).status_code == 302

    # No token, password or full link in any log line.
    logged = '\n'.join(r.getMessage() for r in caplog.records)
    assert token not in logged and PASSWORD not in logged and NEW_PASSWORD not in logged
    assert 'reset_completed' in logged and 'reset_requested' in logged
    assert 'SUSAN@example.COM' not in logged


def test_reset_unknown_address_sends_nothing(client, auth, app, smtp):
    with app.app_context():
        make_user()  # an account exists, just not this one
    response = client.post(
        '/reset_password_request', data={'email': 'nobody@example.com'}
    )
    assert response.status_code == 302
    assert response.location == '/reset_password_request/sent'
    job = wait_until(
        lambda: [r for r in outbox_rows(app) if r.status not in ('pending', 'sending')]
    )[0]
    assert job.status == 'dropped' and job.recipients == ''
    assert smtp.messages == []


def test_reset_request_form_errors(client):
    response = client.post('/reset_password_request', data={'email': 'not an email'})
    assert response.status_code == 200
    assert b'must have an @-sign' in response.data


def test_bad_reset_token_gets_its_own_page(client):
    response = client.get('/reset_password/garbage', follow_redirects=True)
    assert b'This reset link is not valid' in response.data
    assert b'Send me a new link' not in response.data
    assert b'href="/reset_password_request"' in response.data


def test_reset_link_ignores_forged_host_headers(client, auth, smtp):
    auth.register()
    client.post(
        '/reset_password_request',
        data={'email': 'susan@example.com'},
        headers={'Host': 'evil.example', 'X-Forwarded-Host': 'evil2.example'},
    )
    (message,) = smtp.wait_for(1)
    assert reset_link(message).startswith('https://microblog.test/reset_password/')
    assert 'evil' not in message.as_string()


def test_reset_signs_out_every_session(make_app, smtp):
    app = make_app()
    phone, laptop = app.test_client(), app.test_client()
    AuthActions(phone).register()
    AuthActions(phone).login(remember=True)
    AuthActions(laptop).login()
    assert phone.get('/index').status_code == 200
    remember = phone.get_cookie('remember_token', domain='microblog.test')
    assert remember is not None

    with app.app_context():
        user = User.by_username('susan')
        token = user.get_reset_password_token()
    browser = app.test_client()
    browser.get(f'/reset_password/{token}')
    browser.post(
        '/reset_password/set-password',
        data={'password': NEW_PASSWORD, 'password2': NEW_PASSWORD},
    )
    assert phone.get('/index').status_code == 302
    assert laptop.get('/index').status_code == 302
    # A remember-me cookie alone no longer signs anyone in.
    thief = app.test_client()
    thief.set_cookie('remember_token', remember.value, domain=remember.domain)
    assert thief.get('/index').status_code == 302


def test_per_account_throttle_ten_requests_send_at_most_three(make_app, smtp):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    for _ in range(10):
        response = client.post(
            '/reset_password_request', data={'email': 'susan@example.com'}
        )
        assert response.status_code == 302
    time.sleep(2)
    assert 1 <= len(smtp.messages) <= 3


def test_reset_slot_is_claimed_once_across_processes(make_app):
    # Two apps with their own engines stand in for two processes.
    first, second = make_app(), make_app()
    with first.app_context():
        make_user()
    results = []
    for app in (first, second, first):
        with app.app_context():
            user = User.by_username('susan')
            results.append(user.claim_reset_slot(300))
            db.session.commit()
    assert results == [True, False, False]


def test_known_unknown_and_throttled_requests_look_the_same(make_app, count_statements):
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        make_user()
        user = User.by_username('susan')
        user.reset_sent_at = datetime.now(UTC)  # throttled
        db.session.commit()
    responses, statements = [], []
    for address in ('susan@example.com', 'nobody@example.com', 'susan@example.com'):
        client = app.test_client()
        client.get('/reset_password_request')
        with count_statements(app) as counter:
            response = client.post('/reset_password_request', data={'email': address})
        statements.append([re.sub(r'\d+', 'N', s) for s in counter.statements])
        cookie = response.headers['Set-Cookie']
        responses.append(
            (
                response.status_code,
                response.data,
                sorted(
                    (k, v) for k, v in response.headers.items() if k != 'Set-Cookie'
                ),
                cookie.split('=', 1)[0],
                sorted(cookie.split('; ')[1:]),
            )
        )
    assert responses[0] == responses[1] == responses[2]
    # The request path does the same database work whoever asks.
    assert statements[0] == statements[1] == statements[2]


def test_every_reset_event_is_audited(client, auth, app, smtp, caplog):
    caplog.set_level(logging.INFO)
    auth.register()
    for _ in range(2):  # the second one is throttled
        client.post('/reset_password_request', data={'email': 'susan@example.com'})
    client.post('/reset_password_request', data={'email': 'nobody@example.com'})
    (message,) = smtp.wait_for(1)
    wait_until(
        lambda: not [r for r in outbox_rows(app) if r.status in ('pending', 'sending')]
    )
    path = reset_link(message).removeprefix('https://microblog.test')
    client.get(path)
    client.get('/reset_password/set-password')
    data = {'password': NEW_PASSWORD, 'password2': NEW_PASSWORD}
    client.post('/reset_password/set-password', data=data)
    client.get(path)
    client.get('/reset_password/set-password')  # used: rejected
    events = [
        json.loads(r.getMessage().removeprefix('audit '))
        for r in caplog.records
        if r.getMessage().startswith('audit ')
    ]
    by_name = {}
    for event in events:
        by_name.setdefault(event['event'], []).append(event)
        assert 'time' in event
    for name in (
        'reset_requested',
        'reset_email_queued',
        'reset_throttled',
        'reset_unknown_address',
        'reset_link_used',
        'reset_completed',
        'reset_token_rejected',
    ):
        assert name in by_name, name
    assert by_name['reset_completed'][0]['account'] == 1
    assert by_name['reset_completed'][0]['client'] == '127.0.0.1'
    assert by_name['reset_token_rejected'][0]['reason'] == 'used'
    assert by_name['reset_unknown_address'][0]['email'] == 'n***@example.com'


def open_reset_link(app, client, username='susan') -> None:
    with app.app_context():
        token = User.by_username(username).get_reset_password_token()
    assert client.get(f'/reset_password/{token}').status_code == 302


def test_one_reset_link_posted_twice_at_once_changes_the_password_once(make_app, smtp):
    app = make_app()
    AuthActions(app.test_client()).register()
    browsers = [app.test_client(), app.test_client()]
    for browser in browsers:
        open_reset_link(app, browser)
    barrier = threading.Barrier(2)
    answers = []

    def post(browser, password):
        barrier.wait()
        data = {'password': password, 'password2': password}
        answers.append(browser.post('/reset_password/set-password', data=data))

    threads = [
        threading.Thread(target=post, args=(b, f'{NEW_PASSWORD} {i}'))
        for i, b in enumerate(browsers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.location for r in answers) == [
        '/login',
        '/reset_password_problem/used',
    ]
    smtp.wait_for(1)
    time.sleep(1)  # a second notice would have arrived by now
    notices = [m for m in smtp.messages if 'password was changed' in m['Subject']]
    assert len(notices) == 1
    passwords = [f'{NEW_PASSWORD} {i}' for i in range(2)]
    signed_in = [
        AuthActions(app.test_client()).login(password=p).status_code == 302
        for p in passwords
    ]
    assert sorted(signed_in) == [False, True]  # exactly one new password works


def test_an_opened_reset_link_dies_at_sign_in_and_sign_out(make_app):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    AuthActions(app.test_client()).register('other', 'other@example.com')
    open_reset_link(app, client)
    assert client.get('/reset_password/set-password').status_code == 200
    AuthActions(client).login('other')
    AuthActions(client).logout()
    response = client.get('/reset_password/set-password')
    assert response.status_code == 302
    assert response.location == '/reset_password_problem/invalid'


def test_reset_password_avoids_context_words(make_app):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    open_reset_link(app, client)
    data = {'password': 'Susan the great', 'password2': 'Susan the great'}
    response = client.post('/reset_password/set-password', data=data)
    assert b'Do not use your username' in response.data


def test_a_completed_reset_confirms_the_address(make_app, smtp):
    app = make_app()
    client = app.test_client()
    with app.app_context():  # an account from before pending sign-ups
        make_user().email_confirmed = False
        db.session.commit()
    open_reset_link(app, client)
    data = {'password': NEW_PASSWORD, 'password2': NEW_PASSWORD}
    assert client.post('/reset_password/set-password', data=data).status_code == 302
    with app.app_context():
        assert User.by_username('susan').email_confirmed


@pytest.mark.parametrize('reason', ['expired', 'used'])
def test_a_dead_reset_link_explains_itself_and_offers_a_new_one(make_app, smtp, reason):
    app = make_app()
    client = app.test_client()
    with app.app_context():
        make_user()
    token = reset_token_for(app, expires_in=-1 if reason == 'expired' else 600)
    if reason == 'used':
        with app.app_context():
            User.by_username('susan').set_password(NEW_PASSWORD)
            db.session.commit()
    client.get(f'/reset_password/{token}')
    response = client.get('/reset_password/set-password')
    assert response.location == f'/reset_password_problem/{reason}'
    page = client.get(response.location).data.decode()
    heading = {'expired': 'has expired', 'used': 'was already used'}[reason]
    assert heading in page and 'Send me a new link' in page
    if reason == 'expired':
        assert 'links last 10 minutes' in page
    assert 'susan@example.com' not in page  # the address is never shown
    sent = client.post(f'/reset_password_problem/{reason}')
    assert sent.location == '/reset_password_request/sent'
    message = smtp.take('Reset Your Password', 'susan@example.com')
    assert reset_link(message)
    # The offer was for that one link: posting again sends nothing more.
    assert client.post(f'/reset_password_problem/{reason}').status_code == 200


def test_someone_elses_account_cannot_be_reached_from_a_dead_link(client):
    """Only a genuine link names an account: a forged one offers nothing."""
    forged = jwt.encode({'reset_password': 1, 'exp': 1}, 'x' * 40, algorithm='HS256')
    client.get(f'/reset_password/{forged}')
    response = client.get('/reset_password/set-password')
    assert response.location == '/reset_password_problem/invalid'
    assert b'Send me a new link' not in client.get(response.location).data
    assert client.get('/reset_password_problem/other').status_code == 404


def test_the_page_after_a_reset_request_says_what_to_look_for(client):
    response = client.post('/reset_password_request', data={'email': 'a@b.example'})
    page = client.get(response.location).data.decode()
    assert "Didn't get the email?" in page or 'Didn&#39;t get the email?' in page
    for words in (
        'no-reply@microblog.test',
        '[Microblog] Reset Your Password',
        'spam',
        'lasts 10 minutes',
        'ask again',
    ):
        assert words in page
