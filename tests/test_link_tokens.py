"""Issue 21, point 9 and part of 10: emailed-link tokens never sit where
others read them (access log, caches, Referer, the session cookie), and a
link planted on someone else's browser ends its session on the server."""

import re
import urllib.request

import pytest
from flask import url_for

from app import links
from app.extensions import db
from app.models import User
from app.testing import PASSWORD, AuthActions

LINK = re.compile(r'https://microblog\.test(/(?:\w+)/[\w.-]+)')


def make_account(app, username='susan') -> None:
    with app.app_context():
        user = User(username=username, email=f'{username}@example.com')
        user.email_confirmed = True
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()


def token_for(app, purpose='not_me', expires_in=600, username='susan') -> str:
    with app.app_context():
        return User.by_username(username).make_token(purpose, expires_in)


def emailed_links(app) -> dict[str, tuple[str, str]]:
    """endpoint -> (URL with a token, its landing URL)."""
    with app.test_request_context():
        return {
            endpoint: (
                url_for(endpoint, token='eyJsecret.token-value'),
                url_for(endpoint, token=landing),
            )
            for endpoint, (_, landing) in links.EMAILED.items()
        }


def test_every_token_route_is_a_declared_emailed_link(app):
    """The list that the headers and the access log use cannot miss one."""
    declared = set(links.EMAILED)
    assert {'auth.reset_password', 'account.confirm_email', 'account.not_me',
            'account.revert_email', 'account.keep_email'} <= declared  # fmt: skip
    for rule in app.url_map.iter_rules():
        if 'token' in rule.arguments:
            assert rule.endpoint in declared
    for url, landing in emailed_links(app).values():
        assert links.redact(f'"GET {url} HTTP/1.1"') == (
            f'"GET {url.replace("eyJsecret.token-value", "[redacted]")} HTTP/1.1"'
        )
        assert links.redact(landing) == landing


@pytest.mark.slow
def test_the_access_log_redacts_every_emailed_link(make_app, app_process):
    app = make_app(MAIL_SENDER_ENABLED=False)
    proc = app_process(app.config['SQLALCHEMY_DATABASE_URI']).start()
    base = f'http://127.0.0.1:{proc.port}'
    for url, _ in emailed_links(app).values():
        name = url.split('/')[1]
        request = urllib.request.Request(
            base + url.replace('eyJsecret', f'secret-{name}'),
            headers={'Referer': f'{base}/not_me/secret-referer'},
        )
        urllib.request.build_opener(NoRedirect).open(request).close()
    assert proc.terminate() == 0
    output = proc.output()
    assert 'secret-' not in output
    for url, _ in emailed_links(app).values():
        assert url.replace('eyJsecret.token-value', '[redacted]') in output


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

    def http_error_302(self, req, fp, code, msg, headers):
        return fp


def test_every_emailed_link_and_landing_is_no_store_no_referrer(app, client):
    make_account(app)
    for url, landing in emailed_links(app).values():
        for path in (url, landing):
            response = client.get(path)
            assert response.headers['Cache-Control'] == 'no-store', path
            assert response.headers['Referrer-Policy'] == 'no-referrer', path
    # A landing that shows its page, not only one that refuses.
    client.get(f'/not_me/{token_for(app)}')
    page = client.get('/not_me/confirm')
    assert b'Secure your account' in page.data
    assert page.headers['Cache-Control'] == 'no-store'
    assert page.headers['Referrer-Policy'] == 'no-referrer'


def session_cookie_text(app, client) -> str:
    """What anyone who sees the cookie can read (it is signed, not secret)."""
    name, domain = app.config['SESSION_COOKIE_NAME'], app.config['SERVER_NAME']
    cookie = client.get_cookie(name, domain=domain).value
    serializer = app.session_interface.get_signing_serializer(app)
    return str(serializer.loads(cookie))


def test_the_session_cookie_holds_no_readable_token(app, client):
    make_account(app)
    token = token_for(app)
    client.get(f'/not_me/{token}')
    text = session_cookie_text(app, client)
    assert 'link:account.not_me' in text
    assert token not in text
    assert token.split('.')[1] not in text  # not even its claims
    assert b'Secure your account' in client.get('/not_me/confirm').data


def test_a_stash_expires_with_its_link(app, client, monkeypatch):
    make_account(app)
    client.get(f'/not_me/{token_for(app, expires_in=60)}')
    assert 'link:account.not_me' in session_cookie_text(app, client)
    now = links.time()
    # Still there within the link's life, even on other pages...
    monkeypatch.setattr(links, 'time', lambda: now + 50)
    client.get('/explore')
    assert 'link:account.not_me' in session_cookie_text(app, client)
    # ...and gone from the cookie soon after the link expired, on any page.
    monkeypatch.setattr(links, 'time', lambda: now + 60 + links.GRACE + 1)
    client.get('/explore')
    assert 'link:' not in session_cookie_text(app, client)


def test_a_stash_from_another_key_or_tampered_is_no_token(app, client):
    make_account(app)
    with client.session_transaction() as session:
        session['link:account.not_me'] = token_for(app)  # plain, as before
    page = client.get('/not_me/confirm')
    assert page.status_code == 302 and page.location == '/index'


@pytest.mark.parametrize('junk', ['²', '٣x', '0', '2147483648', ''])
def test_sign_out_one_session_refuses_what_is_no_id(make_app, junk):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    AuthActions(client).login()
    response = client.post('/sessions', data={'session': junk})
    assert response.status_code == 200
    assert client.get('/index').status_code == 200


def copy_of(app, client):
    """Another browser holding a copy of `client`'s cookies (a stolen one)."""
    thief = app.test_client()
    domain = app.config['SERVER_NAME']
    for name in (app.config['SESSION_COOKIE_NAME'], 'remember_token'):
        cookie = client.get_cookie(name, domain=domain)
        if cookie is not None:
            thief.set_cookie(name, cookie.value, domain=domain)
    return thief


def undo_link(app, client, smtp) -> str:
    """susan changes her address; the undo link from the notice."""
    AuthActions(client).login()
    data = {'current_password': PASSWORD, 'email': 'new@example.com'}
    client.post('/change_email', data=data)
    confirm = smtp.take('Confirm your new email address', 'new@example.com')
    path = LINK.search(confirm.get_body(('plain',)).get_content())[1]
    client.post(client.get(path).location)
    notice = smtp.take('Your email address was changed', 'susan@example.com')
    text = notice.get_body(('plain',)).get_content()
    return next(p for p in LINK.findall(text) if p.startswith('/revert_email/'))


@pytest.mark.parametrize('link', ['not_me', 'revert_email'])
def test_a_planted_link_ends_the_browsers_session_on_the_server(make_app, smtp, link):
    app = make_app()
    make_account(app, 'susan')
    make_account(app, 'victim')
    planted = undo_link(app, app.test_client(), smtp)
    if link == 'not_me':
        planted = f'/not_me/{token_for(app)}'
    victim = app.test_client()
    AuthActions(victim).login('victim', remember=True)
    stolen = copy_of(app, victim)
    assert stolen.get('/index').status_code == 200
    landing = victim.get(planted)
    assert victim.post(landing.location).location == '/login'
    assert victim.get('/index').status_code == 302
    assert stolen.get('/index').status_code == 302  # ended on the server too
