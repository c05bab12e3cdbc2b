"""Sign-up and its emailed confirmation, sign-in, sign-out and the
signed-in session, usernames and password rules."""

import threading

import pytest
import sqlalchemy as sa

from app import db, sessions
from app.models import User
from app.security import safe_next_url
from app.testing import PASSWORD, AuthActions
from app.testing.data import SCRYPT, copy_cookie
from app.testing.links import emailed_path, use_link


def test_register_and_login(client, auth, app):
    response = auth.register(email='Susan@Example.COM')
    assert response.status_code == 302 and response.location == '/login'
    with app.app_context():
        user = User.by_username('susan')
        assert user.email == 'susan@example.com'
    response = auth.login()
    assert response.status_code == 302 and response.location == '/index'
    response = client.get('/index')
    assert b'Hi, susan!' in response.data


@pytest.mark.parametrize(
    ('data', 'message'),
    [
        ({'username': ''}, b'This field is required.'),
        ({'username': 'bad/name'}, b'Use letters, digits'),
        ({'username': 'x' * 65}, b'Field cannot be longer than 64 characters.'),
        ({'email': 'not-an-email'}, b'must have an @-sign'),
        ({'email': 'x' * 250 + '@example.com'}, b'Field cannot be longer than 254'),
        ({'password2': 'something else entirely'}, b'Passwords must match.'),
        ({'password': 'short', 'password2': 'short'}, b'Use at least 8 characters.'),
        ({'password': 'password1', 'password2': 'password1'}, b'too common'),
        ({'password': 'p' * 257, 'password2': 'p' * 257}, b'Use at most 256'),
    ],
)
def test_register_validation(client, data, message, app):
    form = {
        'username': 'susan',
        'email': 'susan@example.com',
        'password': PASSWORD,
        'password2': PASSWORD,
        **data,
    }
    response = client.post('/register', data=form)
    assert response.status_code == 200
    assert message in response.data
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0


def test_long_unicode_password_is_accepted_whole(make_app, smtp):
    auth = AuthActions(make_app(**SCRYPT).test_client(), smtp)
    password = 'ünïcødé ' * 8  # 64 characters, nothing truncated
    auth.register(password=password)
    assert auth.login(password=password).status_code == 302
    auth.logout()
    assert auth.login(password=password[:-1]).status_code == 200


def test_register_refuses_taken_username_and_hides_taken_email(client, auth, app, smtp):
    """Usernames are public, so a taken one is named; a taken email address
    gets the same answer as a new one, and its owner is told by email."""
    auth.register()
    response = auth.register(email='other@example.com')
    assert b'Please use a different username.' in response.data
    fresh = auth.register('newcomer', 'newcomer@example.com', confirm=False)
    taken = auth.register('other', 'SUSAN@EXAMPLE.COM', confirm=False)
    assert fresh.status_code == taken.status_code == 302
    assert fresh.location == taken.location == '/login'
    pages = [client.get('/login').data for _ in range(1)]
    assert b'Check your email to finish signing up.' in pages[0]
    notice = smtp.take('Someone tried to sign up', 'susan@example.com')
    text = notice.get_body(('plain',)).get_content()
    assert 'https://microblog.test/reset_password_request' in text
    smtp.take('Confirm your email address', 'newcomer@example.com')
    with app.app_context():
        names = db.session.scalars(sa.select(User.username).order_by(User.id))
        assert list(names) == ['susan']  # newcomer: once confirmed


def test_login_failure(client, auth):
    auth.register()
    response = auth.login(password='wrong password here')
    assert response.status_code == 200
    assert b'Invalid username or password' in response.data
    response = auth.login(username='nobody')
    assert b'Invalid username or password' in response.data
    assert client.get('/index').status_code == 302


@pytest.mark.parametrize(
    'target',
    [
        '//evil.example',
        '///evil.example',
        '/\\evil.example',
        '\\\\evil.example',
        '\\/evil.example',
        'https://evil.example/',
        'http:evil.example',
        'javascript:alert(1)',
        '/\t/evil.example',
        '/\n/evil.example',
        ' //evil.example',
        'evil.example',
        '',
    ],
)
def test_login_next_refuses_other_hosts(client, auth, target):
    auth.register()
    response = auth.login(query_string={'next': target})
    assert response.status_code == 302
    assert response.location == '/index'


def test_login_next_allows_local_paths(client, auth):
    auth.register()
    response = auth.login(query_string={'next': '/user/susan?page=2'})
    assert response.location == '/user/susan?page=2'
    assert safe_next_url('/explore') == '/explore'


def test_logout_is_post_only(client, auth):
    auth.register()
    auth.login()
    assert client.get('/logout').status_code == 405
    assert client.get('/index').status_code == 200
    response = auth.logout()
    assert response.status_code == 302
    assert client.get('/index').status_code == 302


def test_sign_out_ends_the_session_on_the_server(make_app):
    app = make_app()
    browser = app.test_client()
    AuthActions(browser).register()
    AuthActions(browser).login(remember=True)
    assert browser.get('/index').status_code == 200
    by_session, by_remember = app.test_client(), app.test_client()
    copy_cookie(browser, by_session, 'session')
    copy_cookie(browser, by_remember, 'remember_token')
    assert by_session.get('/index').status_code == 200  # copies work...
    assert by_remember.get('/index').status_code == 200
    AuthActions(browser).logout()
    assert browser.get('/index').status_code == 302
    assert by_session.get('/index').status_code == 302  # ...until sign-out
    assert by_remember.get('/index').status_code == 302
    with app.app_context():
        rows = db.session.execute(sa.text('SELECT revoked_at FROM user_session'))
        assert [r.revoked_at is not None for r in rows] == [True]


def test_the_user_loader_checks_the_session_in_one_query(make_app, count_statements):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    AuthActions(client).login()
    client.get('/index')  # last_seen written now
    with count_statements(app) as counter:
        client.get('/explore')
    loads = [q for q in counter.statements if 'user_session' in q]
    assert len(loads) == 1 and 'JOIN user_session' in loads[0]


def test_the_signed_in_account_is_an_ordinary_orm_object(make_app):
    """The loader and the profile build the account from a Core row
    (app.database.attach): it is still a persistent object of the request's
    session, clean until changed, its changes are saved, and a session that
    already holds the account gets that same object."""
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    AuthActions(client).login()
    with client.session_transaction() as cookie_session:
        token = cookie_session['_user_id']
    with app.test_request_context():
        user = sessions.load_user(token)
        assert sa.inspect(user).persistent and not db.session.dirty
        assert user is db.session.get(User, user.id)
        assert (user.username, user.email_confirmed) == ('susan', True)
        assert user.session_id is not None and user.session_token == token
        profile, stats = User.profile('SUSAN', viewer=user)
        assert profile is user and stats == {
            'followers': 0,
            'following': 0,
            'is_followed': False,
        }
        user.about_me = 'changed through the loaded object'
        db.session.commit()
        user_id = user.id
    with app.test_request_context():
        held = db.session.get(User, user_id)
        assert held.about_me == 'changed through the loaded object'
        assert sessions.load_user(token) is held
        assert sessions.load_user(token + 'x') is None


@pytest.mark.parametrize(
    'name', ['carol', 'CAROL', '\uff43\uff41\uff52\uff4f\uff4c', 'Carol\n']
)
def test_a_username_is_one_identity_in_any_case_or_width(make_app, name):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register('Carol', 'carol@example.com')
    response = AuthActions(client).register(name, 'other@example.com')
    assert b'Please use a different username.' in response.data
    assert AuthActions(client).login(name).status_code == 302
    page = client.get('/user/carol')
    assert page.status_code == 200 and b'Carol' in page.data
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


@pytest.mark.parametrize('name', ['.', '..', '...', 'dave\nx', 'a b', 'x' * 65])
def test_usernames_that_cannot_be_a_path_segment_are_refused(client, auth, name):
    response = auth.register(name, 'dave@example.com')
    assert response.status_code == 200
    assert b'alert-danger' in response.data or b'invalid-feedback' in response.data
    assert auth.login(name).status_code == 200


def test_trailing_whitespace_never_gets_into_a_username(app, client, auth):
    assert auth.register('dave \n', 'dave@example.com').status_code == 302
    with app.app_context():
        assert User.by_username('dave').username == 'dave'


def test_concurrent_sign_ups_for_one_name_give_one_account(make_app):
    app = make_app()
    barrier = threading.Barrier(4)
    statuses = []

    def sign_up(i):
        client = app.test_client()
        barrier.wait()
        statuses.append(AuthActions(client).register('same', f's{i}@example.com'))

    threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in statuses) == [200, 200, 200, 302]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_a_lost_sign_up_race_is_a_form_error(make_app, monkeypatch, smtp):
    """The write itself catches the conflict (the check above it is skipped
    here, as it is when two requests pass it at the same instant)."""
    app = make_app()
    client = app.test_client()
    AuthActions(client, smtp).register('same', 'first@example.com')
    monkeypatch.setattr(
        'app.auth.forms.RegistrationForm.validate_username', lambda *a: None
    )
    response = AuthActions(client).register('SAME', 'second@example.com')
    assert response.status_code == 200
    assert b'Please use a different username.' in response.data
    # An address taken at the same instant: the usual answer, and a notice.
    response = AuthActions(client).register('other', 'first@example.com')
    assert response.status_code == 302
    smtp.take('Someone tried to sign up', 'first@example.com')
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


@pytest.mark.parametrize(
    'password', ['susan-rocks-2026', 'xx SUSAN.BLOGS xx', 'my microblog pass']
)
def test_passwords_avoid_context_words(client, password):
    response = AuthActions(client).register(
        'susan', 'susan.blogs@example.com', password=password
    )
    assert response.status_code == 200
    assert b'Do not use your username, your email address' in response.data


def test_sign_up_is_confirmed_from_the_emailed_link(client, smtp):
    auth = AuthActions(client, smtp)
    response = auth.register(confirm=False)
    assert response.location == '/login'
    assert b'Check your email to finish signing up.' in client.get('/login').data
    message = smtp.take('Confirm your email address', 'susan@example.com')
    assert auth.login().location == '/signup/pending'  # no account until confirmed
    assert b'Send the link again' in client.get('/signup/pending').data
    assert client.get('/index').status_code == 302

    path = emailed_path(message)
    landing = client.get(path)
    assert landing.location == '/confirm_email/confirm'
    assert landing.headers['Referrer-Policy'] == 'no-referrer'
    page = client.get('/confirm_email/confirm')
    assert b'Confirm <strong>susan@example.com</strong>' in page.data
    assert client.post('/confirm_email/confirm').location == '/login'
    auth.login()
    assert b'Resend the confirmation email' not in client.get('/index').data
    client.post('/index', data={'post': 'now it works'})
    assert b'now it works' in client.get('/index').data
    again = use_link(client, path)  # single use
    assert again.location == '/index'
    assert b'already used' in client.get('/index').data


def test_a_confirmation_can_be_resent_within_a_limit(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=True, CONFIRM_RATE_LIMIT='1/minute')
    client = app.test_client()
    auth = AuthActions(client, smtp)
    auth.register(confirm=False)
    smtp.take('Confirm your email address', 'susan@example.com')
    auth.login()
    assert client.post('/signup/pending').status_code == 302
    message = smtp.take('Confirm your email address', 'susan@example.com')
    assert client.post('/signup/pending').status_code == 429
    assert use_link(client, emailed_path(message)).location == '/login'
