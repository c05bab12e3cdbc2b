"""Passkeys (issue 25): managing them, signing in with one, the second step
and re-authentication, against answers made by a software authenticator
(app.testing.passkeys). The refusals are in test_passkey_checks.py."""

import json
import re

import sqlalchemy as sa

from app import db
from app.models import User
from app.passkeys.models import Passkey
from app.sessions import UserSession
from app.testing import AuthActions
from app.testing.data import make_user
from app.testing.mfa import turn_on_authenticator
from app.testing.passkeys import (
    PASSKEY_APP,
    SoftAuthenticator,
    add_passkey,
    b64,
    unb64,
    use_passkey,
)


def signed_in(app, smtp, username='susan'):
    client = app.test_client()
    auth = AuthActions(client, smtp)
    auth.register(username, f'{username}@example.com')
    assert auth.login(username).status_code == 302
    return client


def with_passkey(app, smtp, username='susan'):
    """`username` signed in with one passkey: (client, authenticator)."""
    client = signed_in(app, smtp, username)
    authenticator = SoftAuthenticator()
    assert add_passkey(client, authenticator).status_code == 302
    smtp.take('A passkey was added', f'{username}@example.com')
    return client, authenticator


def passkeys(app, username='susan') -> list[Passkey]:
    with app.app_context():
        return Passkey.list_for(User.by_username(username))


def test_registration_options_ask_for_a_discoverable_verified_passkey(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client = signed_in(app, smtp)
    page = client.get('/passkeys').get_data(as_text=True)
    assert 'You have no passkeys yet.' in page and 'Add a passkey' in page
    assert re.search(r'<script src="/static/js/passkeys\.js', page)
    options = client.post('/passkeys/options').get_json()
    assert options['rp'] == {'id': 'localhost', 'name': 'Microblog'}
    assert options['authenticatorSelection'] == {
        'residentKey': 'required',
        'requireResidentKey': True,
        'userVerification': 'required',
    }
    assert options['attestation'] == 'none'
    assert options['user']['name'] == 'susan'
    handle = unb64(options['user']['id'])
    assert len(handle) == 32 and b'susan' not in handle  # random, not the id
    assert {p['alg'] for p in options['pubKeyCredParams']} == {-8, -7, -257}


def test_adding_a_passkey_lists_it_and_sends_a_notice(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client = signed_in(app, smtp)
    authenticator = SoftAuthenticator()
    response = add_passkey(client, authenticator, backup_eligible=True)
    assert response.status_code == 302 and response.location == '/passkeys'
    notice = smtp.take('A passkey was added', 'susan@example.com')
    text = notice.get_body(('plain',)).get_content()
    assert '/not_me/' in text and 'UTC' in text and '127.0.0.x' in text
    (passkey,) = passkeys(app)
    assert passkey.credential_id == authenticator.credentials[0].id
    assert passkey.backup_eligible and not passkey.backed_up
    assert passkey.transports == 'internal,hybrid' and passkey.sign_count == 0
    assert passkey.aaguid == '00000000-0000-0000-0000-000000000000'
    page = client.get('/passkeys').get_data(as_text=True)
    assert f'value="{passkey.name}"' in page and 'Never' in page
    # A second one: the same WebAuthn user id, the first one excluded.
    options = client.post('/passkeys/options').get_json()
    assert unb64(options['user']['id']) == passkey.user_handle
    assert [c['id'] for c in options['excludeCredentials']] == [
        response_id(authenticator, 0)
    ]


def response_id(authenticator, index: int) -> str:
    return b64(authenticator.credentials[index].id)


def test_managing_passkeys_needs_a_recent_proof(make_app, smtp):
    app = make_app(**{**PASSKEY_APP, 'REAUTH_WINDOW': 0})
    client = signed_in(app, smtp)
    for response in (
        client.get('/passkeys'),
        client.post('/passkeys/options'),
        client.post('/passkeys/add', data={'credential': '{}'}),
    ):
        assert response.status_code == 302
        assert response.location.startswith('/reauthenticate?next=')
    assert client.get('/login').status_code == 302  # still signed in


def test_an_unconfirmed_account_cannot_add_a_passkey(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    with app.app_context():
        make_user().email_confirmed = False  # from before pending sign-ups
        db.session.commit()
    client = app.test_client()
    AuthActions(client).login()
    page = client.get('/passkeys').get_data(as_text=True)
    assert 'Confirm your email address first' in page
    assert 'data-passkey="create"' not in page
    refused = client.post('/passkeys/options')
    assert refused.status_code == 403 and 'Confirm' in refused.get_json()['error']
    # Options from a moment the address was confirmed are no way round.
    set_confirmed(app, True)
    options = client.post('/passkeys/options').get_json()
    set_confirmed(app, False)
    answer = json.dumps(SoftAuthenticator().create(options))
    response = client.post('/passkeys/add', data={'credential': answer})
    assert response.status_code == 302
    assert 'Confirm your email' in client.get('/passkeys').get_data(as_text=True)
    assert passkeys(app) == []


def set_confirmed(app, confirmed: bool) -> None:
    with app.app_context():
        User.by_username('susan').email_confirmed = confirmed
        db.session.commit()


def test_a_passkey_signs_in_fully_and_counts_as_a_recent_proof(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    turn_on_authenticator(client)  # the second step would follow a password
    client.post('/logout')
    page = client.get('/login').get_data(as_text=True)
    assert 'autocomplete="username webauthn"' in page
    assert 'Sign in with a passkey' in page and 'data-conditional' in page
    response = use_passkey(client, authenticator, '/login/passkey?next=/explore')
    assert response.status_code == 302 and response.location == '/explore'
    assert client.get('/passkeys').status_code == 200  # no proof asked
    (passkey,) = passkeys(app)
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    assert 'Never' not in client.get('/passkeys').get_data(as_text=True)


def test_keep_me_signed_in_comes_from_the_checkbox(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    client.post('/logout')
    options = client.post('/login/passkey/options').get_json()
    answer = json.dumps(authenticator.get(options))
    client.post('/login/passkey', data={'credential': answer, 'remember': '1'})
    assert client.get_cookie('remember_token') is not None


def test_after_a_password_the_second_step_offers_a_passkey(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    turn_on_authenticator(client)
    client.post('/logout')
    response = AuthActions(client).login(query_string={'next': '/explore'})
    assert response.location == '/login/verify'
    page = client.get('/login/verify').get_data(as_text=True)
    assert 'Use a passkey' in page and 'name="code"' in page
    options = client.post('/login/verify/passkey/options').get_json()
    assert [c['id'] for c in options['allowCredentials']] == [
        response_id(authenticator, 0)
    ]
    answer = json.dumps(authenticator.get(options))
    response = client.post(
        '/login/verify/passkey', data={'credential': answer, 'trust': '1'}
    )
    assert response.status_code == 302 and response.location == '/explore'
    assert client.get('/index').status_code == 200
    # "Trust this browser" was ticked: no second step next time.
    client.post('/logout')
    assert AuthActions(client).login().location == '/index'


def test_the_second_step_offers_no_passkey_to_an_account_without_one(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client = signed_in(app, smtp)
    turn_on_authenticator(client)
    client.post('/logout')
    AuthActions(client).login()
    assert 'Use a passkey' not in client.get('/login/verify').get_data(as_text=True)


def test_reauthenticate_accepts_a_passkey(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    app.config['REAUTH_WINDOW'] = 0  # every proof has expired
    response = client.get('/passkeys')
    assert response.location == '/reauthenticate?next=/passkeys'
    page = client.get(response.location).get_data(as_text=True)
    assert 'Use a passkey' in page
    app.config['REAUTH_WINDOW'] = 600
    with app.app_context():
        db.session.execute(sa.text('UPDATE user_session SET proven_at = NULL'))
        db.session.commit()
    assert client.get('/passkeys').status_code == 302
    response = use_passkey(
        client, authenticator, '/reauthenticate/passkey?next=/passkeys'
    )
    assert response.status_code == 302 and response.location == '/passkeys'
    assert client.get('/passkeys').status_code == 200


def test_a_passkey_only_user_changes_the_password_without_it(make_app, smtp):
    """Signed in by passkey, the password is not asked for within the window."""
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    client.post('/logout')
    use_passkey(client, authenticator, '/login/passkey')
    new = 'an entirely new passphrase'
    response = client.post('/change_password', data={'password': new, 'password2': new})
    assert response.status_code == 302
    assert AuthActions(app.test_client()).login(password=new).status_code == 302


def test_rename_and_remove(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, _ = with_passkey(app, smtp)
    (passkey,) = passkeys(app)
    field = f'passkey-{passkey.id}-name'
    response = client.post(f'/passkeys/{passkey.id}/rename', data={field: ' Phone '})
    assert response.status_code == 302
    assert passkeys(app)[0].name == 'Phone'
    empty = client.post(f'/passkeys/{passkey.id}/rename', data={field: ''})
    assert empty.status_code == 200 and b'This field is required' in empty.data
    assert b'aria-invalid="true"' in empty.data
    response = client.post(f'/passkeys/{passkey.id}/remove')
    assert response.status_code == 302 and passkeys(app) == []
    notice = smtp.take('A passkey was removed', 'susan@example.com')
    assert 'Phone' in notice.get_body(('plain',)).get_content()


def test_another_accounts_passkey_cannot_be_renamed_or_removed(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    with_passkey(app, smtp, 'susan')
    (passkey,) = passkeys(app, 'susan')
    other = signed_in(app, smtp, 'mallory')
    field = f'passkey-{passkey.id}-name'
    assert (
        other.post(f'/passkeys/{passkey.id}/rename', data={field: 'x'}).status_code
        == 404
    )
    assert other.post(f'/passkeys/{passkey.id}/remove').status_code == 404
    assert passkeys(app, 'susan')[0].name == passkey.name


def test_a_form_asking_for_the_password_offers_a_passkey_instead(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    page = client.get('/change_password').get_data(as_text=True)
    assert 'name="current_password"' not in page and 'passkey instead' not in page
    with app.app_context():
        db.session.execute(sa.text('UPDATE user_session SET proven_at = NULL'))
        db.session.commit()
    for path in ('/change_password', '/change_email', '/sessions'):
        page = client.get(path).get_data(as_text=True)
        assert 'name="current_password"' in page
        assert f'href="/reauthenticate?next={path}">Use a passkey instead' in page
    response = use_passkey(
        client, authenticator, '/reauthenticate/passkey?next=/change_password'
    )
    assert response.location == '/change_password'
    page = client.get('/change_password').get_data(as_text=True)
    assert 'name="current_password"' not in page


def test_a_passkey_does_not_sign_in_an_account_scheduled_for_deletion(make_app, smtp):
    """Like the password: nothing is signed in, no session row is left to
    come back with a restore, and the page says how to restore."""
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    assert client.post('/delete_account', data={'confirm': 'susan'}).status_code == 302
    other = app.test_client()
    response = use_passkey(other, authenticator, '/login/passkey')
    assert response.location == '/deletion_scheduled'
    assert other.get('/index').status_code == 302
    with app.app_context():
        user = User.by_username('susan')
        live = sa.select(sa.func.count()).where(
            UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
        )
        assert db.session.scalar(live) == 0
