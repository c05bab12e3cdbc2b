"""Headers, cookies, CSRF, production refusals, hostile input, logs, rate
limits and SECRET_KEY rotation."""

import logging
import re
import uuid

import jwt
import pytest
import sqlalchemy as sa
from flask import request

from app import ConfigError, create_app, db
from app.extensions import limiter
from app.models import Post, User
from app.testing import PASSWORD, AuthActions, free_port
from app.testing.data import copy_cookie, make_user
from app.testing.links import reset_token_for
from config import Config, TestConfig


def test_rate_limits_answer_with_friendly_429(make_app, caplog):
    caplog.set_level(logging.INFO)
    app = make_app(
        RATELIMIT_ENABLED=True, RESET_RATE_LIMIT='3/minute', LOGIN_RATE_LIMIT='2/minute'
    )
    client = app.test_client()
    for _ in range(3):
        response = client.post(
            '/reset_password_request', data={'email': 'a@example.com'}
        )
        assert response.status_code == 302
    response = client.post('/reset_password_request', data={'email': 'a@example.com'})
    assert response.status_code == 429
    assert b'Too many attempts' in response.data
    assert 'rate_limited' in caplog.text
    AuthActions(client).register()
    for _ in range(2):
        assert AuthActions(client).login(password='wrong one!').status_code == 200
    assert AuthActions(client).login().status_code == 429


def test_rate_limit_is_shared_through_redis(make_app):
    """Two processes (here two apps) count against one limit in Redis."""
    redis = pytest.importorskip('redis')
    try:
        redis.Redis(host='127.0.0.1', port=6379, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip('no Redis server on 127.0.0.1:6379 (.ci/run starts one)')
    settings = {
        'RATELIMIT_ENABLED': True,
        'RATELIMIT_STORAGE_URI': 'redis://127.0.0.1:6379/15',
        'RATELIMIT_KEY_PREFIX': f'test-{uuid.uuid4().hex}',
        'RESET_RATE_LIMIT': '3/minute',
    }
    first, second = make_app(**settings), make_app(**settings)
    codes = [
        app.test_client()
        .post('/reset_password_request', data={'email': 'a@example.com'})
        .status_code
        for app in (first, second, first, second)
    ]
    assert codes == [302, 302, 302, 429]


def test_successful_logins_do_not_count_towards_the_limit(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT='2/minute')
    client = app.test_client()
    auth = AuthActions(client)
    auth.register()
    for _ in range(4):
        assert auth.login().status_code == 302
        auth.logout()


def test_security_headers_and_cookies(client, auth):
    response = client.get('/login')
    csp = response.headers['Content-Security-Policy']
    assert "default-src 'self'" in csp and 'https://www.gravatar.com' in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers['X-Content-Type-Options'] == 'nosniff'
    assert response.headers['X-Frame-Options'] == 'DENY'
    assert response.headers['Referrer-Policy'] == 'same-origin'
    auth.register()
    response = auth.login(remember=True)
    cookies = response.headers.getlist('Set-Cookie')
    for name in ('session', 'remember_token'):
        (cookie,) = [c for c in cookies if c.startswith(name + '=')]
        assert 'HttpOnly' in cookie and 'SameSite=Lax' in cookie


def test_cookies_are_secure_over_https(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    client = app.test_client()
    auth = AuthActions(client)
    auth.register()
    cookies = auth.login(remember=True).headers.getlist('Set-Cookie')
    assert all('Secure' in c for c in cookies)

    assert Config.SESSION_COOKIE_SECURE == (Config.PREFERRED_URL_SCHEME == 'https')


def test_csrf_missing_or_wrong_token_changes_nothing(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        make_user()
        make_user('john')

    page = client.get('/login').data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post('/login', data={'username': 'susan', 'password': PASSWORD})
    assert response.status_code == 400
    assert b'did not come from this site' in response.data
    response = client.post(
        '/login',
        data={'username': 'susan', 'password': PASSWORD, 'csrf_token': token},
        headers={'Referer': 'https://microblog.test/login'},
    )
    assert response.status_code == 302

    for url in ('/follow/john', '/logout', '/index'):
        response = client.post(url, data={'csrf_token': 'wrong', 'post': 'x'})
        assert response.status_code == 400
    with app.app_context():
        assert User.by_username('john').followers_count() == 0
        assert db.session.scalar(sa.select(sa.func.count(Post.id))) == 0
    assert client.get('/index').status_code == 200  # still signed in


def production_config(**overrides):
    settings = {
        'APP_ENV': 'production',
        'TESTING': False,
        'SECRET_KEY': 'production-test-key-0123456789abcdef',
        'SERVER_NAME': 'microblog.example.com',
        'TRUSTED_HOSTS': None,
        'SQLALCHEMY_DATABASE_URI': 'sqlite://',
        'MAIL_SENDER_ENABLED': False,
        'LOG_TO_STDOUT': True,
        **overrides,
    }
    return type('ProductionConfig', (TestConfig,), settings)


@pytest.mark.parametrize('key', [None, '', 'you-will-never-guess', 'short-key'])
def test_production_refuses_weak_secret_key(key):
    with pytest.raises(ConfigError, match='secrets.token_urlsafe'):
        create_app(production_config(SECRET_KEY=key))


def test_production_requires_server_name():
    with pytest.raises(ConfigError, match='SERVER_NAME is not set'):
        create_app(production_config(SERVER_NAME=None))


def test_production_accepts_only_trusted_hosts():
    app = create_app(production_config())
    client = app.test_client()
    assert (
        client.get('/login', headers={'Host': 'microblog.example.com'}).status_code
        == 200
    )
    assert client.get('/login', headers={'Host': 'evil.example'}).status_code == 400


def test_proxy_headers_only_when_configured():
    plain = create_app(production_config())
    proxied = create_app(production_config(PROXY_FIX=1))
    for app, expected in ((plain, '127.0.0.1'), (proxied, '203.0.113.9')):

        @app.route('/whoami')
        def whoami():
            return request.remote_addr

        response = app.test_client().get(
            '/whoami',
            headers={'Host': 'microblog.example.com', 'X-Forwarded-For': '203.0.113.9'},
            environ_base={'REMOTE_ADDR': '127.0.0.1'},
        )
        assert response.text == expected


def test_request_bodies_and_fields_are_bounded(make_app):
    app = make_app(MAX_CONTENT_LENGTH=64 * 1024, MAX_FORM_MEMORY_SIZE=16 * 1024)
    client = app.test_client()
    big = client.post('/login', data={'username': 'x', 'password': 'y' * 70_000})
    assert big.status_code == 413
    assert b'more than this site accepts' in big.data
    # One multipart field over MAX_FORM_MEMORY_SIZE (an url-encoded body is
    # read whole, so MAX_CONTENT_LENGTH bounds its fields).
    data = {'username': 'x', 'about': 'y' * 20_000}
    field = client.post('/register', data=data, content_type='multipart/form-data')
    assert field.status_code == 413
    long_name = 'n' * 5000
    response = client.post('/register', data={'username': long_name})
    assert response.status_code == 200
    assert b'Field cannot be longer than 64 characters' in response.data
    assert long_name.encode() not in response.data
    assert b'n' * 64 in response.data  # what fits is kept for correction


def test_sign_up_is_limited_per_client(make_app, caplog):
    app = make_app(RATELIMIT_ENABLED=True, REGISTER_RATE_LIMIT='2/minute')
    client = app.test_client()
    for i in range(2):
        assert AuthActions(client).register(f'u{i}', f'u{i}@example.com').status_code
    response = AuthActions(client).register('u3', 'u3@example.com')
    assert response.status_code == 429
    assert b'Too many attempts' in response.data


def test_sign_in_works_while_the_rate_limit_store_is_down(make_app, caplog):
    down = f'redis://127.0.0.1:{free_port()}'
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=down,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        LOGIN_RATE_LIMIT='3/minute',
    )
    caplog.set_level(logging.INFO)
    try:
        client = app.test_client()
        assert AuthActions(client).register().status_code == 302
        for _ in range(3):
            assert AuthActions(client).login(password='wrong one!').status_code == 200
        # Still limited, counted in this process.
        assert AuthActions(client).login(password='wrong one!').status_code == 429
        other = app.test_client()
        response = other.post('/reset_password_request', data={'email': 'a@b.co'})
        assert response.status_code == 302
    finally:
        limiter._storage_dead = False
        limiter._in_memory_fallback_enabled = False
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert 'falling back to in-memory' in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


NUL_FORMS = [
    ('/login', {'username': 'a\x00b', 'password': 'p\x00w'}),
    ('/register', {'username': 'a\x00b', 'email': 'a@b.co', 'password': 'x\x00'}),
    ('/reset_password_request', {'email': 'a\x00@example.com'}),
    ('/index', {'post': 'hello\x00world'}),
    ('/edit_profile', {'username': 'susan', 'about_me': 'me\x00'}),
]


@pytest.mark.parametrize('path, data', NUL_FORMS)
def test_nul_bytes_in_forms_are_form_errors(client, auth, path, data):
    auth.register()
    if path in ('/index', '/edit_profile'):
        auth.login()
    response = client.post(path, data={**data, 'password2': data.get('password')})
    assert response.status_code == 200
    assert b'invalid-feedback' in response.data or b'alert' in response.data


@pytest.mark.parametrize(
    'method, path', [('GET', '/user/a%00b'), ('POST', '/follow/a%00b')]
)
def test_nul_bytes_in_urls_are_404(client, auth, method, path):
    auth.register()
    auth.login()
    assert client.open(path, method=method).status_code == 404


def test_sql_parameters_never_reach_an_error_message(app):
    with app.app_context():
        make_user()
        db.session.add(User(username='SUSAN', email='x@example.com'))
        with pytest.raises(sa.exc.IntegrityError) as failure:
            db.session.commit()
        db.session.rollback()
    assert 'SUSAN' not in str(failure.value)
    assert 'parameters hidden' in str(failure.value)


def test_user_text_cannot_forge_log_lines(make_app, caplog):
    app = make_app()

    @app.route('/boom/<word>')
    def boom(word):
        raise RuntimeError('boom')

    app.testing = False  # log it as production would
    response = app.test_client().get('/boom/x%0AINFO%20audit%20forged')
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if 'Exception on' in r.getMessage()]
    assert '\n' not in record.getMessage()
    assert '/boom/x\\nINFO audit forged' in record.getMessage()


@pytest.mark.parametrize(
    'env, key, message',
    [
        ('testing', 'weak', 'APP_ENV'),
        ('production', 'k' * 40, 'fewer than 5 different characters'),
        ('production', 'abcd' * 10, 'fewer than 5 different characters'),
    ],
)
def test_production_refusals_cannot_be_side_stepped(env, key, message):
    settings = {'APP_ENV': env, 'SECRET_KEY': key, 'SERVER_NAME': 'example.com'}
    with pytest.raises(ConfigError, match=message):
        create_app(type('OperatorConfig', (Config,), settings))


def test_pages_for_signed_in_users_are_not_cached(client, auth):
    assert 'no-store' not in client.get('/login').headers.get('Cache-Control', '')
    auth.register()
    auth.login()
    for path in ('/index', '/explore', '/user/susan', '/edit_profile'):
        assert client.get(path).headers['Cache-Control'] == 'no-store'
    assert 'no-store' not in client.get('/static/favicon.svg').headers.get(
        'Cache-Control', ''
    )


def test_key_rotation_keeps_sessions_and_links_in_flight(make_app):
    old = 'old-secret-key-0123456789-abcdefghijk'
    new = 'new-secret-key-9876543210-zyxwvutsrq'
    before = make_app(SECRET_KEY=old)
    client = before.test_client()
    AuthActions(client).register()
    AuthActions(client).login()
    token = reset_token_for(before)
    rotated = make_app(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[old])
    moved = rotated.test_client()
    copy_cookie(client, moved, 'session')
    assert moved.get('/index').status_code == 200
    with rotated.app_context():
        assert User.verify_reset_password_token(token) is not None
        fresh = User.by_username('susan').get_reset_password_token()
    jwt.decode(fresh, new, algorithms=['HS256'], audience='microblog:reset_password')
    unrelated = make_app(SECRET_KEY=new)
    stranger = unrelated.test_client()
    copy_cookie(client, stranger, 'session')
    assert stranger.get('/index').status_code == 302
    with unrelated.app_context():
        assert User.verify_reset_password_token(token) is None


@pytest.mark.parametrize(
    ('method', 'path'),
    [
        ('get', '/security_log/9999999999999999999999999'),
        ('get', '/security_log/2147483648'),
        ('post', '/passkeys/9999999999999999999999999/rename'),
        ('post', '/passkeys/2147483648/remove'),
    ],
)
def test_row_ids_past_what_a_column_holds_are_404(client, auth, method, path):
    auth.register()
    auth.login()
    assert getattr(client, method)(path).status_code == 404
