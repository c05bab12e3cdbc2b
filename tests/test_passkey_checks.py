"""What a passkey answer must pass (issue 25, point 4): the relying party
and origin from SERVER_NAME, single-use challenges bound to the session
that expire in 5 minutes, the sign counter and backup flags, and each
refusal a plain message, never a 500. Also recovery (point 5)."""

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import db
from app.dbtypes import utcnow
from app.models import User
from app.passkeys.models import Ceremony, Passkey
from app.testing import AuthActions
from app.testing.links import reset_link
from app.testing.mfa import turn_on_authenticator
from app.testing.passkeys import (
    PASSKEY_APP,
    SoftAuthenticator,
    add_passkey,
    b64,
    unb64,
    use_passkey,
)

EXPIRED = b'That passkey request expired or was already used.'
NOT_VERIFIED = b'That passkey could not be verified.'
NOT_YOURS = b'That passkey belongs to another account.'


def with_passkey(app, smtp, username='susan', **kw):
    client = app.test_client()
    auth = AuthActions(client, smtp)
    auth.register(username, f'{username}@example.com')
    auth.login(username)
    authenticator = SoftAuthenticator()
    assert add_passkey(client, authenticator, **kw).status_code == 302
    client.post('/logout')
    return client, authenticator


def sign_in_options(client) -> dict:
    return client.post('/login/passkey/options').get_json()


def post_answer(client, answer, where='/login/passkey'):
    body = answer if isinstance(answer, str) else json.dumps(answer)
    return client.post(where, data={'credential': body})


def refused(response, message: bytes) -> bool:
    return response.status_code == 200 and message in response.data


def signed_in(client) -> bool:
    return client.get('/index').status_code == 200


def passkey_row(app, username='susan') -> Passkey:
    with app.app_context():
        return Passkey.list_for(User.by_username(username))[0]


def test_a_replayed_answer_is_refused(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    answer = authenticator.get(sign_in_options(client))
    assert post_answer(client, answer).status_code == 302
    client.post('/logout')
    assert refused(post_answer(client, answer), EXPIRED)
    sign_in_options(client)  # a new challenge does not revive the old answer
    assert refused(post_answer(client, answer), NOT_VERIFIED)
    assert not signed_in(client)


def test_a_challenge_belongs_to_the_browser_it_was_made_for(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    answer = authenticator.get(sign_in_options(client))
    thief = app.test_client()
    assert refused(post_answer(thief, answer), EXPIRED)
    sign_in_options(thief)  # a challenge of its own does not match the answer
    assert refused(post_answer(thief, answer), NOT_VERIFIED)
    assert not signed_in(thief)


def test_a_challenge_expires_after_five_minutes(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    answer = authenticator.get(sign_in_options(client))
    with app.app_context():
        db.session.execute(
            sa.update(Ceremony).values(created_at=utcnow() - timedelta(seconds=301))
        )
        db.session.commit()
    assert refused(post_answer(client, answer), EXPIRED)


def test_a_wrong_origin_or_relying_party_is_refused(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    for origin in ('http://evil.example', 'https://localhost', 'http://localhost:81'):
        answer = authenticator.get(sign_in_options(client), origin=origin)
        assert refused(post_answer(client, answer), NOT_VERIFIED)
    options = sign_in_options(client)
    options['rpId'] = 'evil.example'
    assert refused(post_answer(client, authenticator.get(options)), NOT_VERIFIED)
    assert not signed_in(client)


def test_a_tampered_signature_or_unverified_user_is_refused(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    answer = authenticator.get(sign_in_options(client))
    signature = bytearray(unb64(answer['response']['signature']))
    signature[-1] ^= 1
    answer['response']['signature'] = b64(bytes(signature))
    assert refused(post_answer(client, answer), NOT_VERIFIED)
    answer = authenticator.get(sign_in_options(client), verified=False)
    assert refused(post_answer(client, answer), NOT_VERIFIED)
    assert not signed_in(client)


@pytest.mark.parametrize(
    'body',
    [
        '',
        'not json',
        '[]',
        '{}',
        json.dumps({'id': 'x', 'rawId': '!!', 'type': 'public-key', 'response': {}}),
        json.dumps(
            {
                'id': 'AA',
                'rawId': 'AA',
                'type': 'public-key',
                'response': {
                    'clientDataJSON': 'e30',
                    'authenticatorData': 'AA',
                    'signature': 'AA',
                },
            }
        ),  # fmt: skip
        'x' * 9000,
        '[' * 8000,
    ],
)
def test_garbage_is_a_plain_refusal_never_a_500(make_app, smtp, body):
    app = make_app(**PASSKEY_APP)
    client = app.test_client()
    sign_in_options(client)
    response = post_answer(client, body)
    assert response.status_code == 200 and b'alert-danger' in response.data


def test_an_unknown_passkey_is_refused(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, _ = with_passkey(app, smtp)
    stranger = SoftAuthenticator()
    stranger.create(client.post('/login/passkey/options').get_json() | {
        'user': {'id': b64(b'someone')}, 'rp': {'id': 'localhost'}})  # fmt: skip
    answer = stranger.get(sign_in_options(client))
    assert refused(post_answer(client, answer), b'not registered here')


def test_another_accounts_passkey_is_refused_at_the_second_step_and_reauth(
    make_app, smtp
):
    app = make_app(**PASSKEY_APP)
    _, mallory_key = with_passkey(app, smtp, 'mallory')
    client, _ = with_passkey(app, smtp, 'susan')
    AuthActions(client).login()
    # Signed in as susan, mallory's passkey is no proof.
    options = client.post('/reauthenticate/passkey/options').get_json()
    answer = mallory_key.get(options)
    assert refused(post_answer(client, answer, '/reauthenticate/passkey'), NOT_YOURS)
    turn_on_authenticator(client)
    client.post('/logout')
    AuthActions(client).login()  # now at /login/verify
    options = client.post('/login/verify/passkey/options').get_json()
    answer = mallory_key.get(options)
    assert refused(post_answer(client, answer, '/login/verify/passkey'), NOT_YOURS)
    assert not signed_in(client)
    # A passkey answer with another account's user handle is refused too.
    answer = mallory_key.get(sign_in_options(client))
    answer['response']['userHandle'] = b64(b'x' * 32)
    assert refused(post_answer(client, answer), NOT_YOURS)


def test_the_sign_counter_is_stored_and_must_grow(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    for expected in (1, 2):
        assert use_passkey(client, authenticator, '/login/passkey').status_code == 302
        assert passkey_row(app).sign_count == expected
        client.post('/logout')
    # A cloned authenticator: a fresh challenge, an old counter.
    answer = authenticator.get(sign_in_options(client), count=2)
    assert refused(post_answer(client, answer), NOT_VERIFIED)
    assert passkey_row(app).sign_count == 2


def test_a_synced_passkey_without_a_counter_keeps_working(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp, backup_eligible=True)
    authenticator.counter = False  # as synced passkeys do
    for _ in range(2):
        assert use_passkey(client, authenticator, '/login/passkey').status_code == 302
        client.post('/logout')
    row = passkey_row(app)
    assert row.sign_count == 0 and row.backup_eligible and row.backed_up


def test_backup_flags_are_stored_and_eligibility_cannot_change(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp, backup_eligible=True)
    assert not passkey_row(app).backed_up
    response = use_passkey(client, authenticator, '/login/passkey', backed_up=False)
    assert response.status_code == 302 and not passkey_row(app).backed_up
    client.post('/logout')
    use_passkey(client, authenticator, '/login/passkey', backed_up=True)
    assert passkey_row(app).backed_up
    client.post('/logout')
    answer = authenticator.get(
        sign_in_options(client), backup_eligible=False, backed_up=False
    )
    assert refused(post_answer(client, answer), NOT_VERIFIED)


def test_one_answer_sent_twice_at_once_signs_in_once(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    answer = json.dumps(authenticator.get(sign_in_options(client)))
    cookie = client.get_cookie('session').value
    barrier = threading.Barrier(4)
    statuses = []

    def send():
        racer = app.test_client()
        racer.set_cookie('session', cookie, domain='localhost')
        barrier.wait()
        statuses.append(racer.post('/login/passkey', data={'credential': answer}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in statuses) == [200, 200, 200, 302]


def test_the_relying_party_is_server_names_host_never_the_request(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client = app.test_client()
    options = client.post(
        '/login/passkey/options', headers={'Host': 'evil.example'}
    ).get_json()
    assert options['rpId'] == 'localhost'
    ip_app = make_app(SERVER_NAME='127.0.0.1:5000', PREFERRED_URL_SCHEME='http')
    ip_client = ip_app.test_client()
    assert ip_client.post('/login/passkey/options').status_code == 404
    page = ip_client.get('/login').get_data(as_text=True)
    assert 'Sign in with a passkey' not in page and 'passkeys.js' not in page


def test_a_password_reset_keeps_passkeys(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    link = reset_link(smtp.take('Reset Your Password', 'susan@example.com'))
    client.get(link)
    new = 'an entirely new passphrase'
    response = client.post(
        '/reset_password/set-password', data={'password': new, 'password2': new}
    )
    assert response.status_code == 302
    client.post('/logout')
    assert use_passkey(client, authenticator, '/login/passkey').status_code == 302


def test_reset_two_factor_also_removes_passkeys(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    runner = app.test_cli_runner()
    result = runner.invoke(args=['account', 'reset-two-factor', 'susan', '--yes'])
    assert result.exit_code == 0, result.output
    assert 'Removed the second factor of susan and 1 passkey(s)' in result.output
    assert refused(use_passkey(client, authenticator, '/login/passkey'), b'not regis')
    notice = smtp.take('removed by an operator', 'susan@example.com')
    assert 'passkeys' in notice.get_body(('plain',)).get_content()


def test_this_wasnt_me_removes_passkeys(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    with_passkey(app, smtp)
    with app.app_context():
        token = User.by_username('susan').make_token('not_me', 600)
    client = app.test_client()
    client.get(f'/not_me/{token}')
    page = client.get('/not_me/confirm').get_data(as_text=True)
    assert 'removes its passkeys' in page
    assert client.post('/not_me/confirm').status_code == 302
    with app.app_context():
        assert Passkey.count_for(User.by_username('susan').id) == 0


def test_no_second_step_passkey_without_a_pending_password(make_app, smtp):
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    response = client.post('/login/verify/passkey/options')
    assert (
        response.status_code == 403 and 'sign in again' in response.get_json()['error']
    )
    sign_in = authenticator.get(sign_in_options(client))
    response = post_answer(client, sign_in, '/login/verify/passkey')
    assert response.status_code == 302 and response.location == '/login/verify'
    assert not signed_in(client)


def test_a_challenge_serves_one_purpose(make_app, smtp):
    """A proof's challenge cannot sign in, nor a sign-in's prove anything."""
    app = make_app(**PASSKEY_APP)
    client, authenticator = with_passkey(app, smtp)
    AuthActions(client).login()
    options = client.post('/reauthenticate/passkey/options').get_json()
    client.post('/logout')
    assert refused(post_answer(client, authenticator.get(options)), EXPIRED)
    AuthActions(client).login()
    answer = authenticator.get(sign_in_options(client))
    # The proof's own (unused) challenge is the one checked, and differs.
    where = '/reauthenticate/passkey'
    assert refused(post_answer(client, answer, where), NOT_VERIFIED)
    assert refused(post_answer(client, answer, where), EXPIRED)  # now spent
