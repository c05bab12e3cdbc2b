"""The account pages: settings, password and email changes with their
emailed links, sessions, and the security notices."""

import re
import time

import jwt
import pytest
import sqlalchemy as sa

from app import db
from app.models import User
from app.testing import PASSWORD, AuthActions
from app.testing.data import NEW_PASSWORD, make_user
from app.testing.links import emailed_path, reset_link, reset_token_for, use_link


def test_a_lost_rename_race_is_a_form_error(make_app, monkeypatch):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register('taken', 'taken@example.com')
    AuthActions(client).register()
    AuthActions(client).login()
    monkeypatch.setattr(
        'app.main.forms.EditProfileForm.validate_username', lambda *a: None
    )
    response = client.post('/edit_profile', data={'username': 'Taken'})
    assert response.status_code == 200
    assert b'Please use a different username.' in response.data
    with app.app_context():
        assert User.by_username('susan') is not None


@pytest.mark.parametrize(
    'path, purpose',
    [
        ('/confirm_email/{}', 'reset_password'),
        ('/reset_password/{}', 'confirm_email'),
        ('/revert_email/{}', 'change_email'),
        ('/confirm_email/{}', 'revert_email'),
    ],
)
def test_a_token_works_only_for_its_own_purpose(app, client, path, purpose):
    with app.app_context():
        user = make_user()
        claims = {'email': 'x@example.com'} if purpose == 'change_email' else {}
        if purpose == 'revert_email':
            claims = {'old': 'a@example.com', 'new': user.email}
        token = user.make_token(purpose, 600, **claims)
    landing = client.get(path.format(token))
    response = client.post(landing.location, data={'password': NEW_PASSWORD})
    assert response.status_code == 302
    assert response.location in ('/index', '/reset_password_problem/invalid')
    with app.app_context():
        assert User.by_username('susan').check_password(PASSWORD)


def test_expired_and_forged_confirmation_links_are_refused(app, client):
    with app.app_context():
        user = make_user()
        expired = user.make_token('confirm_email', -1)
        forged = jwt.encode({'confirm_email': user.id}, 'k' * 40, algorithm='HS256')
    for token, words in ((expired, b'has expired'), (forged, b'not valid')):
        use_link(client, f'/confirm_email/{token}')
        assert words in client.get('/index', follow_redirects=True).data


def test_change_password_keeps_this_session_and_ends_the_others(make_app, smtp):
    app = make_app()
    here, there = app.test_client(), app.test_client()
    AuthActions(here, smtp).register()
    AuthActions(here).login()
    AuthActions(there).login(remember=True)
    wrong = here.post(
        '/change_password',
        data={'current_password': 'nope', 'password': NEW_PASSWORD,
              'password2': NEW_PASSWORD},
    )  # fmt: skip
    assert b'That is not your current password.' in wrong.data
    response = here.post(
        '/change_password',
        data={'current_password': PASSWORD, 'password': NEW_PASSWORD,
              'password2': NEW_PASSWORD},
    )  # fmt: skip
    assert response.location == '/settings'
    assert here.get('/index').status_code == 200
    assert there.get('/index').status_code == 302
    smtp.take('Your password was changed', 'susan@example.com')
    assert AuthActions(app.test_client()).login().status_code == 200
    login = AuthActions(app.test_client()).login(password=NEW_PASSWORD)
    assert login.status_code == 302


def change_email(client, address, password=PASSWORD):
    return client.post(
        '/change_email', data={'current_password': password, 'email': address}
    )


def test_change_email_waits_for_the_new_address_and_can_be_undone(make_app, smtp):
    app = make_app()
    client = app.test_client()
    AuthActions(client, smtp).register()
    AuthActions(client, smtp).register('other', 'other@example.com')
    AuthActions(client).login()
    assert (
        b'That is not your current password'
        in change_email(client, 'new@example.com', 'wrong password').data
    )
    assert change_email(client, 'OTHER@Example.com').location == '/settings'
    smtp.take('Someone tried to use your email address', 'other@example.com')
    with app.app_context():
        reset_token = User.by_username('susan').get_reset_password_token()
    assert change_email(client, 'New@Example.com').location == '/settings'
    with app.app_context():
        assert User.by_username('susan').email == 'susan@example.com'
    confirm = smtp.take('Confirm your new email address', 'new@example.com')
    assert use_link(client, emailed_path(confirm)).location == '/index'
    with app.app_context():
        assert User.by_username('susan').email == 'new@example.com'
        assert User.verify_reset_password_token(reset_token) is None

    notice = smtp.take('Your email address was changed', 'susan@example.com')
    assert 'new@example.com' in notice.get_body(('plain',)).get_content()
    revert = emailed_path(notice)
    thief = app.test_client()  # whoever made the change stays signed in...
    AuthActions(thief).login()
    stranger = app.test_client()
    landing = stranger.get(revert)
    page = stranger.get(landing.location)
    assert b'puts back <strong>susan@example.com</strong>' in page.data
    assert stranger.post(landing.location).location == '/login'
    with app.app_context():
        assert User.by_username('susan').email == 'susan@example.com'
    assert thief.get('/index').status_code == 302  # ...until the undo
    assert client.get('/index').status_code == 302
    reset = smtp.take('Reset Your Password', 'susan@example.com')
    assert reset_link(reset)
    assert use_link(stranger, revert).location == '/index'  # used once


def test_sessions_page_lists_and_signs_out_browsers(make_app):
    app = make_app()
    firefox = (
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 '
        'Firefox/133.0'
    )
    phone = app.test_client()
    desk = app.test_client()
    AuthActions(desk).register()
    AuthActions(phone).login(
        headers={'User-Agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)'
                 ' AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148'
                 ' Safari/604.1'},
        environ_base={'REMOTE_ADDR': '203.0.113.77'},
    )  # fmt: skip
    AuthActions(desk).login(headers={'User-Agent': firefox})
    page = desk.get('/sessions', headers={'User-Agent': firefox}).data.decode()
    assert 'Firefox 133 on Windows' in page and 'this browser' in page
    assert 'Mobile Safari 17 on iOS' in page and '203.0.113.x' in page
    assert '203.0.113.77' not in page
    with app.app_context():
        phone_id = db.session.scalar(
            sa.text("SELECT id FROM user_session WHERE client_address = '203.0.113.77'")
        )
    for junk in ('9' * 20, '-1', 'x'):  # never a 500, nothing signed out
        assert desk.post('/sessions', data={'session': junk}).status_code == 200
    assert desk.post('/sessions', data={'session': phone_id}).status_code == 302
    assert phone.get('/index').status_code == 302
    assert desk.get('/index').status_code == 200
    # Signing out everywhere else needs the current password.
    AuthActions(phone).login()
    refused = desk.post('/sessions', data={'current_password': 'wrong'})
    assert b'That is not your current password' in refused.data
    assert phone.get('/index').status_code == 200
    desk.post('/sessions', data={'current_password': PASSWORD})
    assert phone.get('/index').status_code == 302
    assert desk.get('/index').status_code == 200


def test_settings_links_every_account_page(client, auth):
    auth.register()
    auth.login()
    page = client.get('/index').data.decode()
    assert 'href="/settings"' in page
    page = client.get('/settings').data.decode()
    for path in ('/edit_profile', '/change_password', '/change_email', '/sessions'):
        assert f'href="{path}"' in page
        assert client.get(path).status_code == 200


def notice_context_and_link(message) -> tuple[str, str]:
    text = message.get_body(('plain',)).get_content()
    path = re.search(r'https://microblog\.test(/not_me/[\w.-]+)', text)[1]
    return text, path


def test_password_notice_says_when_where_and_offers_this_wasnt_me(make_app, smtp):
    app = make_app()
    client = app.test_client()
    with app.app_context():
        make_user()
    phone = app.test_client()
    AuthActions(phone).login(remember=True)
    token = reset_token_for(app)
    client.get(f'/reset_password/{token}')
    client.post(
        '/reset_password/set-password',
        data={'password': NEW_PASSWORD, 'password2': NEW_PASSWORD},
        headers={'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) '
                 'Gecko/20100101 Firefox/133.0'},
        environ_base={'REMOTE_ADDR': '198.51.100.23'},
    )  # fmt: skip
    notice = smtp.take('Your password was changed', 'susan@example.com')
    text, path = notice_context_and_link(notice)
    assert 'Firefox 133 on Linux' in text and '198.51.100.x' in text
    assert re.search(r'When: \w+day, \w+ \d+, 20\d\d, \d\d:\d\d UTC', text)
    assert "This wasn't me" in text
    assert 'This wasn' in notice.get_body(('html',)).get_content()

    intruder = app.test_client()
    AuthActions(intruder).login(password=NEW_PASSWORD)
    stranger = app.test_client()
    landing = stranger.get(path)
    assert landing.location == '/not_me/confirm'
    assert b'Secure your account' in stranger.get('/not_me/confirm').data
    assert intruder.get('/index').status_code == 200  # nothing on GET
    assert stranger.post('/not_me/confirm').location == '/login'
    assert intruder.get('/index').status_code == 302
    reset = smtp.take('Reset Your Password', 'susan@example.com')
    assert reset_link(reset)


def test_a_sign_in_from_a_new_browser_is_notified_once(make_app, smtp):
    app = make_app()
    with app.app_context():
        make_user()
    chrome = {
        'User-Agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
        '(KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36'
    }
    first = AuthActions(app.test_client())
    first.login()  # the first sign-in ever: no notice
    first.logout()
    first.login()  # the same browser (its device cookie): no notice
    laptop = AuthActions(app.test_client())
    laptop.login(headers=chrome)
    notice = smtp.take('New sign-in from a browser', 'susan@example.com')
    text, _ = notice_context_and_link(notice)
    assert 'Chrome 156 on Windows' in text
    laptop.logout()
    laptop.login(headers=chrome)
    time.sleep(1)
    subjects = [m['Subject'] for m in smtp.messages]
    assert not any('New sign-in' in s for s in subjects)
