"""Languages: which one a page is in, the catalogs complete and intact,
every page and email in Spanish and Chinese without English left, and
email in its recipient's language."""

import os
import re

import pytest
import sqlalchemy as sa
from babel.messages.catalog import Catalog

from app.dbtypes import utcnow
from app.deletion import restorable_until
from app.email import build_message
from app.extensions import db
from app.models import User
from app.security_log import SecurityEvent
from app.testing import PASSWORD, ROOT
from app.testing.data import make_user
from app.testing.i18n import (
    LANGUAGES,
    catalog,
    code_messages,
    english_left,
    lost_placeholders,
    translate,
    untranslated,
    visible_text,
)

HTML_LANG = re.compile(r'<html lang="([^"]+)"')


def html_lang(response) -> str:
    return HTML_LANG.search(response.get_data(as_text=True))[1]


@pytest.fixture(scope='module')
def code():
    return code_messages()


# Choosing the language


@pytest.mark.parametrize(
    'accept, lang',
    [
        ('es-ES,es;q=0.9,en;q=0.8', 'es'),
        ('zh-CN,en;q=0.8', 'zh-Hans'),  # the first choice wins, not the exact match
        ('zh-Hans', 'zh-Hans'),
        ('fr-FR, de;q=0.9', 'en'),  # nothing we have: English
        ('es;q=0, zh;q=0.5', 'zh-Hans'),  # q=0 means "not this one"
        ('', 'en'),
    ],
)
def test_the_browser_chooses_before_sign_in(client, accept, lang):
    response = client.get('/login', headers={'Accept-Language': accept})
    assert response.status_code == 200
    assert html_lang(response) == lang


def test_the_account_setting_wins_over_the_browser(app, client, auth):
    with app.app_context():
        make_user('susan')
    auth.login()
    chinese = {'Accept-Language': 'zh-CN'}
    assert html_lang(client.get('/index', headers=chinese)) == 'zh-Hans'
    response = client.post('/settings', data={'language': 'es'}, headers=chinese)
    assert response.status_code == 302
    page = client.get('/index', headers=chinese)
    assert html_lang(page) == 'es'
    assert 'Inicio' in page.get_data(as_text=True)  # the navigation's "Home"
    with app.app_context():
        assert db.session.scalar(db.select(User.language)) == 'es'


def test_the_menu_names_each_language_in_itself(app, client, auth):
    with app.app_context():
        make_user('susan', language='zh_Hans')
    auth.login()
    page = client.get('/settings').get_data(as_text=True)
    options = re.findall(
        r'<option value="(\w+)"( selected)? lang="([\w-]+)">([^<]+)<', page
    )
    assert options == [
        ('en', '', 'en', 'English'),
        ('es', '', 'es', 'Español'),
        ('zh_Hans', ' selected', 'zh-Hans', '简体中文'),
    ]


def test_an_unknown_language_is_a_form_error_not_a_500(app, client, auth):
    with app.app_context():
        make_user('susan')
    auth.login()
    response = client.post('/settings', data={'language': 'xx'})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(User.language)) is None


def test_changing_the_language_needs_the_csrf_token(app, client, auth):
    with app.app_context():
        make_user('susan', language='en')
    auth.login()
    app.config['WTF_CSRF_ENABLED'] = True
    page = client.get('/settings').get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
    assert client.post('/settings', data={'language': 'es'}).status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(User.language)) == 'en'
    data = {'language': 'es', 'csrf_token': token}
    same_site = {'Referer': 'https://microblog.test/settings'}
    assert client.post('/settings', data=data, headers=same_site).status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(User.language)) == 'es'


# The catalogs


@pytest.mark.parametrize('language', LANGUAGES)
def test_every_message_in_the_code_is_translated(code, language):
    assert untranslated(code, catalog(language)) == []


@pytest.mark.parametrize('language', LANGUAGES)
def test_translations_keep_their_placeholders(language):
    assert lost_placeholders(catalog(language)) == []


def test_the_checks_catch_a_missing_message_and_a_lost_placeholder(code):
    broken = Catalog(locale='es')
    first = next(m for m in code if m.id and '%(' in str(m.id) and not m.pluralizable)
    broken.add(first.id, string='sin marcador')
    assert untranslated(code, broken)  # everything else is missing
    assert lost_placeholders(broken) == [f'{first.id!r} -> {"sin marcador"!r}']


def test_the_english_finder_finds_an_english_page(client):
    page = visible_text(client.get('/login').get_data(as_text=True))
    assert 'Forgot your password' in ' '.join(english_left(page, catalog('es')))


def test_plurals_follow_each_language(app, client, auth):
    with app.app_context():
        susan, john, mary = make_user('susan'), make_user('john'), make_user('mary')
        john.follow(susan)
        db.session.commit()
        susan.language = 'es'
        db.session.commit()
    auth.login()
    one = visible_text(client.get('/user/susan').get_data(as_text=True))
    assert '1 seguidor' in one and '1 seguidores' not in one
    with app.app_context():
        mary = db.session.scalar(db.select(User).filter_by(username='mary'))
        mary.follow(db.session.scalar(db.select(User).filter_by(username='susan')))
        db.session.commit()
    two = visible_text(client.get('/user/susan').get_data(as_text=True))
    assert '2 seguidores' in two


# Every page and email, in each language

SIGNED_OUT = ['/login', '/register', '/reset_password_request', '/no/such/page']
SIGNED_IN = [
    '/index', '/explore', '/user/susan', '/edit_profile', '/settings',
    '/change_password', '/change_email', '/sessions', '/two_factor',
    '/two_factor/setup', '/passkeys', '/export', '/delete_account',
    '/security_log', '/reauthenticate',
]  # fmt: skip
# Forms sent empty: every error message shows.
EMPTY_POSTS = ['/login', '/register', '/reset_password_request', '/change_password',
               '/change_email', '/edit_profile', '/delete_account']  # fmt: skip


@pytest.mark.parametrize('language', LANGUAGES)
def test_every_page_is_in_the_language_with_no_english_left(make_app, language):
    app = make_app(REAUTH_WINDOW=0)
    translated = catalog(language)
    client = app.test_client()
    headers = {'Accept-Language': language.replace('_', '-')}
    found = {}

    def visit(path, method='GET'):
        response = client.open(path, method=method, headers=headers, data={})
        assert response.status_code < 500, path
        if response.status_code in (301, 302, 303):
            return
        assert html_lang(response) == language.replace('_', '-'), path
        left = english_left(visible_text(response.get_data(as_text=True)), translated)
        if left:
            found[f'{method} {path}'] = left

    for path in SIGNED_OUT:
        visit(path)
    for path in EMPTY_POSTS[:3]:
        visit(path, 'POST')
    with app.app_context():
        make_user('susan', language=language)
        make_user('john').follow(db.session.scalar(db.select(User)))
        db.session.commit()
    client.post('/login', data={'username': 'susan', 'password': PASSWORD})
    client.post('/index', data={'post': 'hola'})
    for path in SIGNED_IN:
        visit(path)
    for path in EMPTY_POSTS[3:]:
        visit(path, 'POST')
    assert found == {}


def test_a_bad_address_is_refused_in_the_readers_language(client):
    """email-validator explains in English only: English keeps its words."""
    spanish, english = {'Accept-Language': 'es'}, {'Accept-Language': 'en'}
    data = {'email': 'not-an-address'}
    page = client.post('/reset_password_request', data=data, headers=spanish)
    assert translate('es', 'Enter a valid email address, like name@example.com.') in (
        page.get_data(as_text=True)
    )
    assert '@-sign' not in page.get_data(as_text=True)
    page = client.post('/reset_password_request', data=data, headers=english)
    assert '@-sign' in page.get_data(as_text=True)


EMAIL_CONTEXT = {
    'token': 'token',
    'keep_token': 'token',
    'new_email': 'new@example.com',
    'hours': 24,
    'message': '',
    'log_url': 'http://localhost/security_log',
    'when': '2026-12-02T10:00:00',
    'address': '203.0.113.x',
    'browser': 'Firefox 133',
    'system': 'Windows',
    'restored': 'old@example.com',
    'replaced': 'new@example.com',
    'username': 'susan',
}


@pytest.mark.parametrize('language', LANGUAGES)
def test_every_email_is_in_the_language_with_no_english_left(app, language):
    translated = catalog(language)
    folder = os.path.join(ROOT, 'app', 'templates', 'email')
    names = sorted({n[:-4] for n in os.listdir(folder) if n.endswith('.txt')})
    names = [n for n in names if not n.startswith('_')]
    found = {}
    with app.test_request_context():
        user = make_user('susan', language=language)
        user.deleted_at = utcnow()
        context = {**EMAIL_CONTEXT, 'until': restorable_until(user)}
        for name in names:
            message = build_message('Subject', 'to@example.com', name, user=user,
                                    **context)  # fmt: skip
            assert message.extra_headers['Content-Language'] == language.replace(
                '_', '-'
            )
            for part in (message.body, visible_text(message.html)):
                left = english_left(part, translated)
                if left:
                    found[name] = left
            assert f'lang="{language.replace("_", "-")}"' in message.html, name
    assert found == {}


# Email in its recipient's language


def test_a_reset_arrives_in_the_accounts_language_not_the_browsers(app, client, smtp):
    with app.app_context():
        make_user('susan', language='es')
    english = {'Accept-Language': 'en-US'}
    response = client.post(
        '/reset_password_request', data={'email': 'susan@example.com'}, headers=english
    )
    assert html_lang(client.get(response.location, headers=english)) == 'en'
    subject = translate('es', '[Microblog] Reset Your Password')
    assert subject != '[Microblog] Reset Your Password'
    message = smtp.take(subject, 'susan@example.com')
    assert message['Content-Language'] == 'es'
    assert 'lang="es"' in message.get_body(('html',)).get_content()
    text = message.get_body(('plain',)).get_content()
    assert english_left(text, catalog('es')) == []


def test_a_sign_up_keeps_its_browsers_language(app, client, smtp):
    chinese = {'Accept-Language': 'zh-CN,zh;q=0.9'}
    data = {'username': 'lihua', 'email': 'lihua@example.com',
            'password': PASSWORD, 'password2': PASSWORD}  # fmt: skip
    assert client.post('/register', data=data, headers=chinese).status_code == 302
    subject = translate('zh_Hans', '[Microblog] Confirm your email address')
    message = smtp.take(subject, 'lihua@example.com')
    assert message['Content-Language'] == 'zh-Hans'
    link = re.search(
        r'/confirm_email/[\w.-]+', message.get_body(('plain',)).get_content()
    )
    client.get(link[0])  # opened in another browser: English
    client.post('/confirm_email/confirm')
    with app.app_context():
        assert db.session.scalar(db.select(User.language)) == 'zh_Hans'


def test_someone_tried_to_sign_up_reaches_the_owner_in_the_owners_language(
    app, client, smtp
):
    with app.app_context():
        make_user('susan', language='zh_Hans')
    spanish = {'Accept-Language': 'es'}
    data = {'username': 'intruso', 'email': 'susan@example.com',
            'password': PASSWORD, 'password2': PASSWORD}  # fmt: skip
    assert client.post('/register', data=data, headers=spanish).status_code == 302
    english = '[Microblog] Someone tried to sign up with your email address'
    message = smtp.take(translate('zh_Hans', english), 'susan@example.com')
    assert message['Content-Language'] == 'zh-Hans'


def test_a_change_of_language_is_logged_and_told_in_the_language_it_replaced(
    app, client, auth, smtp
):
    """Whoever holds a session cannot quietly make the owner's next alarms
    ones the owner cannot read."""
    with app.app_context():
        make_user('susan', language='es')
    auth.login()
    assert client.post('/settings', data={'language': 'zh_Hans'}).status_code == 302
    subject = translate('es', '[Microblog] The language of your account was changed')
    message = smtp.take(subject, 'susan@example.com')
    assert message['Content-Language'] == 'es'
    assert '简体中文' in message.get_body(('plain',)).get_content()
    log = client.get('/security_log').get_data(as_text=True)
    assert translate('zh_Hans', 'Language changed') in log
    # The same language again, or one its emails already had: no notice.
    client.post('/settings', data={'language': 'zh_Hans'})
    with app.app_context():
        events = db.session.scalar(
            sa.select(sa.func.count()).select_from(SecurityEvent)
            .where(SecurityEvent.event == 'language_changed')
        )  # fmt: skip
    assert events == 1
