"""One guess budget per account for every check of the current password,
and the per-account sign-in failure limit (issue 21, point 1)."""

import logging
import uuid

import pytest
import sqlalchemy as sa

from app import db
from app.extensions import limiter
from app.forms import BaseForm
from app.guesses import CurrentPassword
from app.sessions import UserSession
from app.testing import PASSWORD, AuthActions, free_port

WRONG = 'not my password at all'
LIMITS = {
    'RATELIMIT_ENABLED': True,
    'LOGIN_RATE_LIMIT': '1000/minute',
    'PASSWORD_GUESS_BUDGET': '5/15minutes',
}
# Each page that asks for the current password, with a valid rest of form.
NEW = 'a fresh passphrase'
PAGES = [
    ('/sessions', {}),
    ('/change_password', {'password': NEW, 'password2': NEW}),
    ('/change_email', {'email': 'elsewhere@example.com'}),
]


def guess(client, page: int, password: str = WRONG):
    path, data = PAGES[page % len(PAGES)]
    return client.post(path, data={**data, 'current_password': password})


def live_sessions(app) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(UserSession.id).where(UserSession.revoked_at.is_(None))
            )
        )


def signed_in(app, smtp, count: int):
    """`count` browsers signed in to susan's account (stolen cookies)."""
    first = app.test_client()
    AuthActions(first, smtp).register()
    clients = [first] + [app.test_client() for _ in range(count - 1)]
    for client in clients:
        assert AuthActions(client).login().status_code == 302
    return clients


def test_every_page_draws_on_one_budget_then_the_guesser_is_signed_out(make_app, smtp):
    app = make_app(**LIMITS)
    thief, owner = signed_in(app, smtp, 2)
    for i in range(4):  # across all three pages
        response = guess(thief, i)
        assert response.status_code == 200
        assert b'That is not your current password.' in response.data
    response = guess(thief, 4)  # the fifth wrong answer spends the budget
    assert response.status_code == 302 and '/login' in response.location
    assert thief.get('/index').status_code == 302  # signed out...
    assert len(live_sessions(app)) == 1  # ...on the server: the owner's remains
    notice = smtp.take('Too many wrong passwords', 'susan@example.com')
    assert 'This wasn' in notice.get_body(('plain',)).get_content()
    # Even the right password is refused, from any session, while it is spent.
    response = guess(owner, 1, PASSWORD)
    assert response.status_code == 302 and '/login' in response.location
    assert live_sessions(app) == []
    # The password did not change.
    assert AuthActions(app.test_client()).login().status_code == 302


def test_a_right_password_is_not_counted(make_app, smtp):
    app = make_app(**LIMITS)
    (client,) = signed_in(app, smtp, 1)
    for i in range(4):
        assert guess(client, i).status_code == 200
    for _ in range(3):  # right answers give their try back
        assert guess(client, 0, PASSWORD).status_code == 302
    assert guess(client, 0).status_code == 302  # the fifth wrong one
    assert client.get('/index').status_code == 302


def test_without_a_budget_guessing_is_unlimited(make_app, smtp):
    """What the issue saw: every wrong answer answered, then the right one."""
    app = make_app(**{**LIMITS, 'PASSWORD_GUESS_BUDGET': 'none'})
    (client,) = signed_in(app, smtp, 1)
    for i in range(12):
        assert guess(client, i).status_code == 200
    assert guess(client, 0, PASSWORD).status_code == 302


def redis_url() -> str:
    redis = pytest.importorskip('redis')
    try:
        redis.Redis(host='127.0.0.1', port=6379, db=4, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip('no Redis server on 127.0.0.1:6379')
    return 'redis://127.0.0.1:6379/4'


def test_the_budget_is_shared_by_every_process(make_app, smtp):
    """Two apps (two processes' worth of state) count in one Redis."""
    shared = {**LIMITS, 'RATELIMIT_STORAGE_URI': redis_url(),
              'RATELIMIT_KEY_PREFIX': f'test-{uuid.uuid4().hex}'}  # fmt: skip
    first, second = make_app(**shared), make_app(**shared)
    AuthActions(first.test_client(), smtp).register()
    a, b = first.test_client(), second.test_client()
    for client in (a, b):
        assert AuthActions(client).login().status_code == 302
    codes = [guess(c, i).status_code for i, c in enumerate((a, b, a, b, a))]
    assert codes == [200, 200, 200, 200, 302]
    assert guess(b, 0, PASSWORD).status_code == 302  # spent for b too
    assert live_sessions(first) == []


def test_sign_in_failures_have_a_per_account_limit(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT='1000/minute',
                   LOGIN_ACCOUNT_LIMIT='3/hour')  # fmt: skip
    AuthActions(app.test_client(), smtp).register()
    for _ in range(3):  # right passwords do not count
        assert AuthActions(app.test_client()).login().status_code == 302
    codes = []
    for i in range(4):  # each from another client address
        client = app.test_client()
        client.environ_base['REMOTE_ADDR'] = f'198.51.100.{i + 1}'
        codes.append(AuthActions(client).login(password=WRONG).status_code)
    assert codes == [200, 200, 200, 429]
    fresh = app.test_client()
    fresh.environ_base['REMOTE_ADDR'] = '203.0.113.9'
    assert AuthActions(fresh).login().status_code == 429  # even the right one
    # Another account is not affected.
    AuthActions(app.test_client(), smtp).register('maria', 'maria@example.com')
    assert AuthActions(fresh).login('maria').status_code == 302


def test_with_the_store_down_the_budget_counts_in_the_process(make_app, smtp, caplog):
    caplog.set_level(logging.INFO)
    down = f'redis://127.0.0.1:{free_port()}'
    app = make_app(**LIMITS, RATELIMIT_STORAGE_URI=down,
                   RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True)  # fmt: skip
    try:
        thief, owner = signed_in(app, smtp, 2)
        codes = [guess(thief, i).status_code for i in range(5)]
        assert codes == [200, 200, 200, 200, 302]
        assert guess(owner, 0, PASSWORD).status_code == 302
    finally:
        limiter._storage_dead = False
        limiter._in_memory_fallback_enabled = False
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (
        len(warnings) == 1 and 'falling back to in-memory' in warnings[0].getMessage()
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def all_subclasses(cls) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found


def test_every_form_asking_for_the_current_password_uses_the_budget(app):
    """A form added later that asks for `current_password` must check it
    with the CurrentPassword validator (current_password_field() does)."""
    asking = []
    for form in all_subclasses(BaseForm):
        field = getattr(form, 'current_password', None)
        if field is not None:
            asking.append(form.__name__)
            validators = field.kwargs.get('validators', [])
            assert any(isinstance(v, CurrentPassword) for v in validators), form
    assert {'ChangePasswordForm', 'ChangeEmailForm', 'SignOutOthersForm'} <= set(asking)
