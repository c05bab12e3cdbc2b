"""Usernames and browser names that cannot be turned into links or pass
for someone else's; renamed names held for their owner (issue 21, points
5 and 8)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import db
from app.agents import describe_agent
from app.dbtypes import utcnow
from app.models import User
from app.testing import PASSWORD, AuthActions
from app.usernames import ReleasedUsername
from app.validators import link_like

TAKEN = b'Please use a different username.'


def sign_up(client, username: str):
    return AuthActions(client).register(username, 'new@example.com', confirm=False)


def accounts(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(sa.select(User.username)))


def legacy_user(app, username: str) -> None:
    """An account made before the rules (inserted as a migration keeps it)."""
    with app.app_context():
        user = User(username=username, email='old@example.com', email_confirmed=True)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()


LINK_LIKE = ['www.evil-example.com', 'evil-example.com', 'Click.Here', 'wwW.x1']


@pytest.mark.parametrize('name', LINK_LIKE)
def test_names_that_look_like_links_are_refused_at_sign_up(app, client, name):
    response = sign_up(client, name)
    assert response.status_code == 200
    assert b'cannot look like a web or email address' in response.data
    assert accounts(app) == []


@pytest.mark.parametrize('name', ['john.s', 'v1.2', 'mary-jane_42', 'ann.b1'])
def test_dotted_names_that_are_no_host_are_accepted(app, client, name):
    assert sign_up(client, name).status_code == 302
    assert accounts(app) == [name]


def test_rename_to_a_link_is_refused_but_existing_names_keep_working(app, client):
    legacy_user(app, 'www.legacy-name.com')
    assert AuthActions(client).login('www.legacy-name.com').status_code == 302
    data = {'username': 'www.legacy-name.com', 'about_me': 'still me'}
    assert client.post('/edit_profile', data=data).status_code == 302
    response = client.post('/edit_profile', data={'username': 'evil.example'})
    assert b'cannot look like a web or email address' in response.data
    assert accounts(app) == ['www.legacy-name.com']


LOOK_ALIKES = [
    '\u0430lice',  # Cyrillic a, then Latin
    'p\u0430ypal',
    '\u03c1aypal',  # Greek rho
    '\u3164alice',  # Hangul filler: a letter drawn as nothing
    'alice\u3164',
    '\u3164',
    'ali\u200bce',  # zero-width space
    'ali\u200dce',  # zero-width joiner
]


@pytest.mark.parametrize('name', LOOK_ALIKES)
def test_look_alike_and_invisible_names_are_refused(app, client, name):
    response = sign_up(client, name)
    assert response.status_code == 200
    assert b'invalid-feedback' in response.data
    assert accounts(app) == []


def test_one_script_names_are_welcome(app, client):
    for i, name in enumerate(
        ['\u0430\u043b\u0438\u0441\u0430', 'Jos\u00e9', '\u5f20\u4f1f']
    ):
        response = AuthActions(client).register(
            name, f'u{i}@example.com', confirm=False
        )
        assert response.status_code == 302
    assert len(accounts(app)) == 3


def rename(client, name: str):
    return client.post('/edit_profile', data={'username': name, 'about_me': ''})


def test_a_renamed_name_stays_reserved_to_its_owner(app, client):
    auth = AuthActions(client)
    auth.register()
    auth.login()
    assert rename(client, 'susanna').status_code == 302
    other = app.test_client()
    response = AuthActions(other).register('Susan', 'x@example.com', confirm=False)
    assert TAKEN in response.data
    AuthActions(other).register('mallory', 'm@example.com')
    AuthActions(other).login('mallory')
    assert TAKEN in rename(other, 'susan').data
    assert accounts(app) == ['mallory', 'susanna']
    # Its owner may take it back; then the name it leaves is held instead.
    assert rename(client, 'susan').status_code == 302
    assert TAKEN in rename(other, 'susanna').data
    assert rename(client, 'susan2').status_code == 302
    assert accounts(app) == ['mallory', 'susan2']


def test_a_released_name_is_free_after_the_hold(app, client):
    AuthActions(client).register()
    AuthActions(client).login()
    rename(client, 'susanna')
    with app.app_context():
        held = db.session.get(ReleasedUsername, 'susan')
        assert held is not None
        held.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    other = app.test_client()
    assert AuthActions(other).register('susan', 'x@example.com').status_code == 302
    assert accounts(app) == ['susan', 'susanna']


BAIT = (
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) '
    'Click-here-evil.example/11.5 CFNetwork/1 Darwin/20'
)


def test_notices_name_only_browsers_the_parser_knows(make_app, smtp):
    app = make_app()
    legacy_user(app, 'susan')
    AuthActions(app.test_client()).login('susan')  # the first sign-in
    AuthActions(app.test_client()).login('susan', headers={'User-Agent': BAIT})
    notice = smtp.take('New sign-in from a browser', 'old@example.com')
    for part in ('plain', 'html'):
        text = notice.get_body((part,)).get_content()
        assert 'an unknown browser on iOS' in text
        assert 'evil' not in text and 'Click' not in text


@pytest.mark.parametrize(
    'agent, shown',
    [
        (BAIT, ('an unknown browser', 'iOS')),
        ('www.evil-example.com/5.0', ('an unknown browser', 'an unknown system')),
        ('Mozilla/5.0 (compatible; WebPageTest.org bot)', None),
        (
            'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
            ('Firefox 133', 'Linux'),
        ),
    ],
)
def test_browser_names_never_look_like_links(agent, shown):
    described = describe_agent(agent)
    assert not any(link_like(name) for name in described)
    if shown is not None:
        assert described == shown
