"""Mail budgets (issue 21, point 3): whatever the route, requests cannot
make the app send more than a few emails of a kind per hour to one
address, per account and per client. Counted at a real SMTP server."""

import logging
import time

import sqlalchemy as sa

from app import db
from app.models import User
from app.outbox import OutboxMessage, Status
from app.testing import PASSWORD, AuthActions

BUDGETS = {
    'RATELIMIT_ENABLED': True,
    'LOGIN_RATE_LIMIT': '1000/minute',
    'REGISTER_RATE_LIMIT': '1000/minute',
    'CONFIRM_RATE_LIMIT': '1000/minute',
    'RESET_RATE_LIMIT': '1000/minute',
    'MAIL_BUDGET': '3/hour',
    'MAIL_CLIENT_BUDGET': '1000/hour',
}
BROWSERS = [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like '
    'Gecko) Chrome/120.0.0.0 Safari/537.36',
    'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 '
    '(KHTML, like Gecko) Version/17.0 Safari/605.1.15',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like '
    'Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0',
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like '
    'Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 '
    '(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
]


def delivered(app, smtp, subject: str, to: str | None = None) -> int:
    """Once the outbox is empty and the sink has all it sent: how many
    messages with `subject` (to `to`) arrived."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with app.app_context():
            statuses = list(db.session.scalars(sa.select(OutboxMessage.status)))
        sent = statuses.count(Status.SENT)
        arrived = len(smtp.handler.envelopes)  # AuthActions takes messages
        if not set(statuses) & set(Status.IN_QUEUE) and arrived >= sent:
            break
        time.sleep(0.05)
    else:
        raise AssertionError('the outbox did not drain')
    return sum(
        subject in m['Subject'] and (to is None or m['To'] == to) for m in smtp.messages
    )


def signed_in(app, smtp, name: str = 'susan', confirm: bool = True, addr=None):
    client = app.test_client()
    if addr:
        client.environ_base['REMOTE_ADDR'] = addr
    auth = AuthActions(client, smtp)
    auth.register(name, f'{name}@example.com', confirm=confirm)
    assert auth.login(name).status_code == 302
    return client


def change_email(client, address: str):
    data = {'current_password': PASSWORD, 'email': address}
    return client.post('/change_email', data=data)


def test_change_email_confirmations_are_budgeted_per_account(make_app, smtp, caplog):
    caplog.set_level(logging.INFO)
    app = make_app(**BUDGETS)
    # An account that never confirmed its own address, as in the issue.
    client = signed_in(app, smtp, 'mallory', confirm=False)
    responses = [change_email(client, f'target{i}@example.net') for i in range(10)]
    # Every answer is the same: reaching the budget shows nothing.
    assert {(r.status_code, r.location) for r in responses} == {(302, '/settings')}
    assert delivered(app, smtp, 'Confirm your new email address') == 3
    refusals = [r.getMessage() for r in caplog.records if 'mail_budget_reached' in
                r.getMessage()]  # fmt: skip
    assert len(refusals) == 7
    assert '"t***@example.net"' in refusals[0]
    assert 'target3@example.net' not in caplog.text.split('mail_budget_reached')[1]


def test_one_address_gets_few_emails_whoever_asks(make_app, smtp):
    app = make_app(**BUDGETS)
    for i in range(6):  # six accounts, six clients, one victim
        client = signed_in(app, smtp, f'user{i}', addr=f'198.51.100.{i + 1}')
        assert change_email(client, 'victim@example.net').status_code == 302
    sent = delivered(app, smtp, 'Confirm your new email address', 'victim@example.net')
    assert sent == 3


def test_one_client_causes_few_emails(make_app, smtp):
    app = make_app(**{**BUDGETS, 'MAIL_CLIENT_BUDGET': '4/hour'})
    for i in range(6):  # six accounts and six addresses, one client
        client = signed_in(app, smtp, f'user{i}', addr=f'198.51.100.{i + 1}')
        client.environ_base['REMOTE_ADDR'] = '203.0.113.5'
        change_email(client, f'target{i}@example.net')
    assert delivered(app, smtp, 'Confirm your new email address') == 4


def test_new_sign_in_notices_are_budgeted(make_app, smtp):
    app = make_app(**BUDGETS)
    signed_in(app, smtp)
    for agent in BROWSERS:
        client = app.test_client()
        client.environ_base['HTTP_USER_AGENT'] = agent
        assert AuthActions(client).login().status_code == 302
    assert delivered(app, smtp, 'New sign-in from a browser') == 3


def test_an_unconfirmed_address_gets_no_notices(make_app, smtp):
    """Sign up with someone else's address, never confirm it, then sign in
    from many browsers: the address's owner hears nothing of it."""
    app = make_app(**BUDGETS)
    signed_in(app, smtp, confirm=False)
    for agent in BROWSERS[:2]:
        client = app.test_client()
        client.environ_base['HTTP_USER_AGENT'] = agent
        AuthActions(client).login()
    assert delivered(app, smtp, 'New sign-in') == 0
    assert delivered(app, smtp, 'Confirm your email address') == 1  # sign-up's


def test_resends_and_sign_up_attempts_are_budgeted(make_app, smtp):
    app = make_app(**BUDGETS)
    client = signed_in(app, smtp, confirm=False)
    for _ in range(5):
        assert client.post('/resend_confirmation').status_code == 302
    assert delivered(app, smtp, 'Confirm your email address') == 3
    for i in range(5):  # someone keeps signing up with susan's address
        other = app.test_client()
        other.environ_base['REMOTE_ADDR'] = f'198.51.100.{i + 1}'
        AuthActions(other).register(f'other{i}', 'susan@example.com', confirm=False)
    assert delivered(app, smtp, 'Someone tried to sign up') == 3


def test_reset_mail_keeps_its_own_throttle(make_app, smtp):
    app = make_app(**{**BUDGETS, 'MAIL_BUDGET': '1/hour', 'RESET_EMAIL_INTERVAL': 0})
    with app.app_context():
        user = User(username='susan', email='susan@example.com', email_confirmed=True)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    client = app.test_client()
    for _ in range(3):
        client.post('/reset_password_request', data={'email': 'susan@example.com'})
    assert delivered(app, smtp, 'Reset Your Password') == 3
