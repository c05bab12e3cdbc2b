"""Microblog's test suite: models, pages, email and the reset flow, security."""

import http.cookiejar
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import jwt
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from dotenv import dotenv_values
from flask import request
from flask_migrate import downgrade, upgrade
from werkzeug.security import generate_password_hash

from app import ConfigError, create_app, database, db, sessions, timeline
from app.email import send_email
from app.extensions import limiter
from app.models import Post, User
from app.outbox import OutboxMessage, backoff
from app.security import safe_next_url
from app.testing import (
    ARTIFACTS,
    PASSWORD,
    AuthActions,
    PageWatch,
    SinkHandler,
    SMTPSink,
    free_port,
)
from config import Config, TestConfig

NEW_PASSWORD = 'a brand new passphrase'
LINK = re.compile(r'https?://[^\s"<]+/reset_password/[\w.-]+')


def make_user(username='susan', email=None, password=PASSWORD) -> User:
    """An established account (its email address confirmed)."""
    email = email or f'{username}@example.com'
    user = User(username=username, email=email, email_confirmed=True)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


ON_POSTGRES = bool(os.environ.get('TEST_DATABASE_URL', '').startswith('postgres'))


def add_posts(author: User, n: int, start: datetime | None = None) -> None:
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        db.session.add(
            Post(
                body=f'{author.username} post {i}',
                author=author,
                timestamp=start + timedelta(minutes=i),
            )
        )
    db.session.commit()


def reset_link(message) -> str:
    text = message.get_body(('plain',)).get_content()
    return LINK.search(text).group(0)


# ---------------------------------------------------------------- models


def test_password_hashing(app):
    with app.app_context():
        u = User(username='susan', email='susan@example.com')
        u.set_password('cat-and-dog-123')
        assert not u.check_password('dog-and-cat-123')
        assert u.check_password('cat-and-dog-123')
        assert 'cat' not in u.password_hash


def test_password_is_unicode_normalized(app):
    with app.app_context():
        u = User(username='susan', email='susan@example.com')
        u.set_password('caf\u00e9 au lait!')  # precomposed é
        assert u.check_password('cafe\u0301 au lait!')  # e + combining accent


def test_avatar_gravatar(app):
    with app.app_context():
        u = User(username='john', email='john@example.com')
        assert u.avatar(128) == (
            'https://www.gravatar.com/avatar/d4c74594d841139328695756648b6bd6'
            '?d=identicon&s=128'
        )


def test_avatar_local_when_gravatar_off(make_app):
    app = make_app(GRAVATAR=False)
    with app.test_request_context():
        u = User(username='john', email='john@example.com')
        url = u.avatar(64)
        assert url.startswith('/avatar/d4c74594d841139328695756648b6bd6')
    response = app.test_client().get(url)
    assert response.status_code == 200
    assert response.mimetype == 'image/svg+xml'
    assert b'<svg' in response.data


def test_follow_and_unfollow(app):
    with app.app_context():
        u1, u2 = make_user('john'), make_user('susan')
        assert not u1.is_following(u2)
        assert u1.following_count() == 0
        u1.follow(u2)
        u1.follow(u2)  # twice is still once
        db.session.commit()
        assert u1.is_following(u2)
        assert u1.following_count() == 1 and u2.followers_count() == 1
        assert User.profile('SUSAN', viewer=u1) == (
            u2,
            {
                'followers': 1,
                'following': 0,
                'is_followed': True,
            },
        )
        assert User.profile('nobody', viewer=u1) == (None, {})
        u1.unfollow(u2)
        db.session.commit()
        assert not u1.is_following(u2)
        assert u2.followers_count() == 0


def test_following_posts_newest_first(app):
    with app.app_context():
        john, susan, mary, david = (
            make_user(n) for n in ('john', 'susan', 'mary', 'david')
        )
        now = datetime.now(UTC)
        posts = {}
        for i, u in enumerate((john, susan, mary, david)):
            posts[u.username] = Post(
                body=f'post from {u.username}',
                author=u,
                timestamp=now + timedelta(seconds=i + 1),
            )
            db.session.add(posts[u.username])
        john.follow(susan)
        john.follow(david)
        susan.follow(mary)
        mary.follow(david)
        db.session.commit()

        def posts_of(u):
            return list(db.session.scalars(u.following_posts()))

        assert posts_of(john) == [posts['david'], posts['susan'], posts['john']]
        assert posts_of(susan) == [posts['mary'], posts['susan']]
        assert posts_of(mary) == [posts['david'], posts['mary']]
        assert posts_of(david) == [posts['david']]


# The reader below follows 3 authors: MERGE_LIMIT decides the way.
TIMELINE_WAYS = {'merge': 400, 'merge, at the limit': 3, 'walk past MERGE_LIMIT': 2}


@pytest.mark.parametrize('way', TIMELINE_WAYS)
def test_timeline_pages_match_the_plain_query(app, monkeypatch, way):
    """The index-backed timeline returns exactly the plain query's pages,
    whichever way it finds them."""
    monkeypatch.setattr(timeline, 'MERGE_LIMIT', TIMELINE_WAYS[way])
    with app.app_context():
        reader, *authors = (make_user(f'u{i}') for i in range(5))
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for i in range(40):  # interleaved authors, some equal timestamps
            author = authors[i % 4] if i % 5 else reader
            stamp = start + timedelta(minutes=i // 2)
            db.session.add(Post(body=f'p{i}', author=author, timestamp=stamp))
        for author in authors[:3]:
            reader.follow(author)
        db.session.commit()
        expected = list(db.session.scalars(reader.following_posts()))
        assert {p.author for p in expected} == {reader, *authors[:3]}
        for per_page in (3, 7):
            for page_number in range(1, 8):
                got = timeline.home_page(reader, page_number, per_page)
                first = (page_number - 1) * per_page
                want = expected[first : first + per_page]
                assert [c.id for c in got.items] == [p.id for p in want]
                assert got.has_next == (len(expected) > first + per_page)


@pytest.mark.skipif(ON_POSTGRES, reason='counts SQLite VM steps')
def test_sqlite_timeline_runs_only_the_way_that_applies(app, monkeypatch):
    """SQLite runs every branch of the timeline's compound statement: the
    way that does not apply must stop before it reads (LIMIT 0). Here the
    newest 3,000 posts are by someone the reader does not follow, so a walk
    reads them all while the merge reads only the followed authors'."""
    with app.app_context():
        reader, other, *authors = (make_user(f'u{i}') for i in range(5))
        for author in authors:
            reader.follow(author)
            add_posts(author, 5)
        add_posts(other, 3_000, start=datetime(2026, 2, 1, tzinfo=UTC))

        def steps(merge_limit: int) -> int:
            monkeypatch.setattr(timeline, 'MERGE_LIMIT', merge_limit)
            raw = db.session.connection().connection.dbapi_connection
            counted = []
            raw.set_progress_handler(lambda: counted.append(1), 100)
            try:
                page = timeline.home_page(reader, 1, 10)
            finally:
                raw.set_progress_handler(None, 100)
            assert {card.author for card in page.items} == {'u2', 'u3', 'u4'}
            return len(counted)

        merged, walked = steps(400), steps(2)
        assert walked > 200  # the walk passes the 3,000 others' posts
        assert merged * 10 < walked


def test_last_seen_written_at_most_once_a_minute(app):
    with app.app_context():
        u = make_user()
        u.last_seen = datetime.now(UTC) - timedelta(seconds=30)
        assert u.touch_last_seen() is False
        u.last_seen = datetime.now(UTC) - timedelta(seconds=61)
        assert u.touch_last_seen() is True


# ---------------------------------------------------------------- tokens


def test_reset_token_valid(app):
    with app.app_context():
        u = make_user()
        token = u.get_reset_password_token()
        assert User.verify_reset_password_token(token) == u
        payload = jwt.decode(token, options={'verify_signature': False})
        assert payload['reset_password'] == u.id and 'exp' in payload


def test_reset_token_expired(app):
    with app.app_context():
        u = make_user()
        token = u.get_reset_password_token(expires_in=-1)
        assert User.check_reset_password_token(token) == (None, 'expired')


def test_reset_token_tampered(app):
    with app.app_context():
        u, other = make_user(), make_user('mallory')
        header, payload, sig = u.get_reset_password_token().split('.')
        forged = jwt.encode({'reset_password': other.id}, 'x' * 32, algorithm='HS256')
        tampered = '.'.join([header, forged.split('.')[1], sig])
        assert User.verify_reset_password_token(tampered) is None
        assert User.verify_reset_password_token('not-a-token') is None
        assert User.verify_reset_password_token('') is None


def test_reset_token_wrong_key_unknown_user_and_missing_claims(app):
    with app.app_context():
        u = make_user()
        good = jwt.decode(
            u.get_reset_password_token(), options={'verify_signature': False}
        )
        key = app.config['SECRET_KEY']
        assert (
            User.verify_reset_password_token(jwt.encode(good, 'wrong-key-' * 4)) is None
        )
        unknown = {**good, 'reset_password': 999}
        assert User.verify_reset_password_token(jwt.encode(unknown, key)) is None
        no_exp = {k: v for k, v in good.items() if k != 'exp'}
        assert User.verify_reset_password_token(jwt.encode(no_exp, key)) is None
        other_purpose = {**good, 'aud': 'microblog:something-else'}
        assert User.verify_reset_password_token(jwt.encode(other_purpose, key)) is None
        tutorial_style = {'reset_password': u.id, 'exp': good['exp']}
        assert User.verify_reset_password_token(jwt.encode(tutorial_style, key)) is None
        unsigned = jwt.encode(good, None, algorithm='none')
        assert User.verify_reset_password_token(unsigned) is None
        assert User.verify_reset_password_token(jwt.encode(good, key)) == u


def test_reset_token_dies_when_password_or_email_changes(app):
    with app.app_context():
        u = make_user()
        token = u.get_reset_password_token()
        u.set_password('another good passphrase')
        db.session.commit()
        assert User.check_reset_password_token(token) == (None, 'used')
        token = u.get_reset_password_token()
        u.email = 'susan@new.example.com'
        db.session.commit()
        assert User.verify_reset_password_token(token) is None


# ---------------------------------------------------------------- pages


def test_pages_require_login(client):
    for url in ('/', '/index', '/explore', '/user/susan', '/edit_profile'):
        response = client.get(url)
        assert response.status_code == 302
        assert response.location.startswith('/login?next=')


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


def test_long_unicode_password_is_accepted_whole(client, auth):
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
        assert list(names) == ['susan', 'newcomer']


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


def test_post_and_timeline(client, auth, app):
    auth.register()
    auth.login()
    response = client.post(
        '/index', data={'post': 'Hello, world!'}, follow_redirects=True
    )
    assert b'Your post is now live!' in response.data
    assert b'Hello, world!' in response.data
    response = client.post('/index', data={'post': 'x' * 141})
    assert b'Field must be between 1 and 140 characters long.' in response.data
    response = client.post('/index', data={'post': ''})
    assert b'This field is required.' in response.data
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Post.id))) == 1


def test_explore_pagination(client, auth, app):
    auth.register()
    with app.app_context():
        add_posts(User.by_username('susan'), 7)  # POSTS_PER_PAGE is 3 in tests
    auth.login()
    page1 = client.get('/explore').data
    assert b'susan post 6' in page1 and b'susan post 4' in page1
    assert b'susan post 3' not in page1
    assert b'href="/explore?page=2"' in page1
    page3 = client.get('/explore?page=3').data
    assert b'susan post 0' in page3 and b'susan post 1' not in page3
    assert b'href="/explore?page=2"' in page3 and b'page=4' not in page3
    assert client.get('/explore?page=abc').status_code == 200
    assert client.get('/explore?page=-5').status_code == 200
    assert b'No posts here yet.' in client.get('/explore?page=99').data


def test_user_profile_and_follow(client, auth, app):
    auth.register()
    with app.app_context():
        john = make_user('john')
        john.about_me = 'I like cats'
        db.session.commit()
        add_posts(john, 4)
    auth.login()
    assert client.get('/user/nobody').status_code == 404
    page = client.get('/user/john').data
    assert b'I like cats' in page and b'0 followers &middot; 0 following' in page
    assert b'Last seen' in page and b'john post 3' in page
    assert b'/user/john?page=2' in page
    assert b'action="/follow/john"' in page
    assert client.get('/follow/john').status_code == 405
    response = client.post('/follow/john', follow_redirects=True)
    assert b'You are following john!' in response.data
    assert b'1 follower &middot; 0 following' in response.data
    assert b'action="/unfollow/john"' in response.data
    timeline = client.get('/index').data
    assert b'john post 3' in timeline
    response = client.post('/unfollow/john', follow_redirects=True)
    assert b'0 followers &middot; 0 following' in response.data
    response = client.post('/follow/nobody', follow_redirects=True)
    assert b'User nobody not found.' in response.data
    response = client.post('/follow/susan', follow_redirects=True)
    assert b'You cannot follow yourself!' in response.data


def test_edit_profile(client, auth, app):
    auth.register()
    with app.app_context():
        make_user('john')
    auth.login()
    page = client.get('/edit_profile').data
    assert b'value="susan"' in page
    response = client.post('/edit_profile', data={'username': 'john', 'about_me': ''})
    assert b'Please use a different username.' in response.data
    response = client.post(
        '/edit_profile', data={'username': 'susan', 'about_me': 'x' * 141}
    )
    assert b'Field cannot be longer than 140 characters.' in response.data
    response = client.post(
        '/edit_profile',
        data={'username': 'susan2', 'about_me': 'Hi there'},
        follow_redirects=True,
    )
    assert b'Your changes have been saved.' in response.data
    assert b'Hi there' in client.get('/user/susan2').data


def test_404_and_500_pages(make_app):
    app = make_app()

    @app.route('/boom')
    def boom():
        db.session.add(User(username='ghost', email='ghost@example.com'))
        db.session.flush()
        raise RuntimeError('boom')

    client = app.test_client()
    response = client.get('/no/such/page')
    assert response.status_code == 404 and b'Page not found' in response.data
    app.testing = False  # let the 500 handler run instead of re-raising
    app.config['PROPAGATE_EXCEPTIONS'] = False
    response = client.get('/boom')
    assert response.status_code == 500
    assert b'An unexpected error has occurred' in response.data
    with app.app_context():
        assert User.by_username('ghost') is None


def test_pages_are_served_offline(client, auth):
    auth.register()
    auth.login()
    page = client.get('/index').data.decode()
    assets = re.findall(r'(?:href|src)="([^"]+\.(?:css|js))"', page)
    assert any('bootstrap' in a and a.endswith('.css') for a in assets)
    assert any('bootstrap' in a and a.endswith('.js') for a in assets)
    for asset in assets:
        assert asset.startswith('/'), asset
        assert client.get(asset).status_code == 200


def test_the_composer_shows_its_errors_in_place(client, auth):
    """The hand-written composer keeps what WTForms rendered: a label tied
    to the field, and on an error aria-invalid, the message and the text."""
    auth.register('susan')
    auth.login('susan')
    page = client.get('/index').get_data(as_text=True)
    assert '<label class="form-label" for="post">Say something</label>' in page
    assert 'id="post"' in page and 'aria-invalid="false"' in page
    too_long = 'x' * 141 + ' & <b>'
    page = client.post('/index', data={'post': too_long}).get_data(as_text=True)
    assert 'aria-invalid="true"' in page and 'form-control is-invalid' in page
    feedback = re.search(r'<div class="invalid-feedback d-block">([^<]+)</div>', page)
    assert 'between 1 and 140' in feedback[1]
    assert '>\n' + 'x' * 140 + '</textarea>' in page  # echoed, cut to the limit
    page = client.post('/index', data={'post': ''}).get_data(as_text=True)
    assert 'This field is required.' in page


def test_list_pages_escape_what_users_write(client, auth, app):
    """Post bodies are escaped on every list page (the card loop escapes by
    hand), and so are the URLs the cards print."""
    auth.register('susan')
    auth.login('susan')
    body = '<script>alert(1)</script> & "quoted"'
    client.post('/index', data={'post': body})
    for url in ('/index', '/explore', '/user/susan'):
        page = client.get(url).get_data(as_text=True)
        assert '<script>alert(1)' not in page
        assert '&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34;' in page
        avatar = re.search(r'<article.*?<img src="([^"]+)"', page, re.S)[1]
        assert '&' not in avatar.replace('&amp;', '')


@pytest.mark.parametrize('per_page', [1, 25])
def test_list_pages_use_a_constant_number_of_statements(
    make_app, count_statements, monkeypatch, per_page
):
    """Authors arrive with their posts: no query per post, whatever the page."""
    app = make_app(POSTS_PER_PAGE=per_page)
    with app.app_context():
        authors = [make_user(f'writer{i}') for i in range(30)]
        reader = make_user('reader')
        for i, author in enumerate(authors):
            reader.follow(author)
            add_posts(author, 1, start=datetime(2026, 1, 1, 0, i, tzinfo=UTC))
        db.session.commit()
    client = app.test_client()
    AuthActions(client).login('reader')
    client.get('/index')  # last_seen is fresh now: not counted below

    def count(url: str) -> int:
        with count_statements(app) as counter:
            response = client.get(url)
        assert response.status_code == 200
        return counter.count

    counts = {
        url: count(url)
        for url in ('/index', '/explore', '/explore?page=2', '/user/writer3')
    }
    assert client.get('/explore').data.count(b'<article') == per_page
    # The same for both page sizes: compare with the recorded figures.
    assert counts == {
        '/index': 2,
        '/explore': 2,
        '/explore?page=2': 2,
        '/user/writer3': 3,
    }
    # Past MERGE_LIMIT follows, the timeline walks: the same statement.
    monkeypatch.setattr(timeline, 'MERGE_LIMIT', 1)
    assert count('/index') == 2


# ---------------------------------------------------------------- email and reset


def test_reset_flow_end_to_end(client, auth, app, smtp, caplog):
    caplog.set_level(logging.INFO)
    auth.register(email='Susan@Example.com')
    response = client.post(
        '/reset_password_request', data={'email': 'SUSAN@example.COM'}
    )
    assert response.status_code == 302
    assert response.location == '/reset_password_request/sent'
    page = client.get('/reset_password_request/sent').data
    assert b'Check your email for the instructions to reset your password' in page

    (message,) = smtp.wait_for(1)
    assert message['Subject'] == '[Microblog] Reset Your Password'
    assert message['To'] == 'susan@example.com'  # the stored address
    assert message.get_body(('html',)) is not None
    link = reset_link(message)
    assert link.startswith('https://microblog.test/reset_password/')
    html = message.get_body(('html',)).get_content()
    assert link in html

    path = link.removeprefix('https://microblog.test')
    response = client.get(path)
    # The token leaves the address bar at once.
    assert response.status_code == 302
    assert response.location == '/reset_password/set-password'
    assert response.headers['Referrer-Policy'] == 'no-referrer'
    page = client.get('/reset_password/set-password')
    assert page.status_code == 200 and b'Choose a new password' in page.data
    assert page.headers['Cache-Control'] == 'no-store'
    token = path.rsplit('/', 1)[1]
    assert token.encode() not in page.data

    response = client.post(
        '/reset_password/set-password',
        data={'password': NEW_PASSWORD, 'password2': NEW_PASSWORD},
    )
    assert response.status_code == 302 and response.location == '/login'
    assert auth.login(password=PASSWORD).status_code == 200
    assert auth.login(password=NEW_PASSWORD).status_code == 302
    auth.logout()

    # The notice email: no link to reset, advice if it was not them.
    (_, notice) = smtp.wait_for(2)
    assert notice['To'] == 'susan@example.com'
    assert 'password was changed' in notice['Subject']
    notice_text = notice.get_body(('plain',)).get_content()
    assert 'If it was not you' in notice_text
    assert notice.get_body(('html',)) is not None
    assert not LINK.search(notice_text)

    # The link is single-use, and says so.
    client.get(path)
    response = client.get('/reset_password/set-password')
    assert response.status_code == 302
    assert response.location == '/reset_password_problem/used'
    response = client.post(
        '/reset_password/set-password',
        data={
            'password': 'yet another passphrase',
            'password2': 'yet another passphrase',
        },
    )
    assert response.status_code == 302
    assert auth.login(password=NEW_PASSWORD).status_code == 302

    # No token, password or full link in any log line.
    logged = '\n'.join(r.getMessage() for r in caplog.records)
    assert token not in logged and PASSWORD not in logged and NEW_PASSWORD not in logged
    assert 'reset_completed' in logged and 'reset_requested' in logged
    assert 'SUSAN@example.COM' not in logged


def test_reset_unknown_address_sends_nothing(client, auth, app, smtp):
    with app.app_context():
        make_user()  # an account exists, just not this one
    response = client.post(
        '/reset_password_request', data={'email': 'nobody@example.com'}
    )
    assert response.status_code == 302
    assert response.location == '/reset_password_request/sent'
    job = wait_until(
        lambda: [r for r in outbox_rows(app) if r.status not in ('pending', 'sending')]
    )[0]
    assert job.status == 'dropped' and job.recipients == ''
    assert smtp.messages == []


def test_reset_request_form_errors(client):
    response = client.post('/reset_password_request', data={'email': 'not an email'})
    assert response.status_code == 200
    assert b'must have an @-sign' in response.data


def test_bad_reset_token_gets_its_own_page(client):
    response = client.get('/reset_password/garbage', follow_redirects=True)
    assert b'This reset link is not valid' in response.data
    assert b'Send me a new link' not in response.data
    assert b'href="/reset_password_request"' in response.data


def test_reset_link_ignores_forged_host_headers(client, auth, smtp):
    auth.register()
    client.post(
        '/reset_password_request',
        data={'email': 'susan@example.com'},
        headers={'Host': 'evil.example', 'X-Forwarded-Host': 'evil2.example'},
    )
    (message,) = smtp.wait_for(1)
    assert reset_link(message).startswith('https://microblog.test/reset_password/')
    assert 'evil' not in message.as_string()


def test_reset_signs_out_every_session(make_app, smtp):
    app = make_app()
    phone, laptop = app.test_client(), app.test_client()
    AuthActions(phone).register()
    AuthActions(phone).login(remember=True)
    AuthActions(laptop).login()
    assert phone.get('/index').status_code == 200
    remember = phone.get_cookie('remember_token', domain='microblog.test')
    assert remember is not None

    with app.app_context():
        user = User.by_username('susan')
        token = user.get_reset_password_token()
    browser = app.test_client()
    browser.get(f'/reset_password/{token}')
    browser.post(
        '/reset_password/set-password',
        data={'password': NEW_PASSWORD, 'password2': NEW_PASSWORD},
    )
    assert phone.get('/index').status_code == 302
    assert laptop.get('/index').status_code == 302
    # A remember-me cookie alone no longer signs anyone in.
    thief = app.test_client()
    thief.set_cookie('remember_token', remember.value, domain=remember.domain)
    assert thief.get('/index').status_code == 302


def test_per_account_throttle_ten_requests_send_at_most_three(make_app, smtp):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    for _ in range(10):
        response = client.post(
            '/reset_password_request', data={'email': 'susan@example.com'}
        )
        assert response.status_code == 302
    time.sleep(2)
    assert 1 <= len(smtp.messages) <= 3


def test_reset_slot_is_claimed_once_across_processes(make_app):
    # Two apps with their own engines stand in for two processes.
    first, second = make_app(), make_app()
    with first.app_context():
        make_user()
    results = []
    for app in (first, second, first):
        with app.app_context():
            user = User.by_username('susan')
            results.append(user.claim_reset_slot(300))
            db.session.commit()
    assert results == [True, False, False]


def test_known_unknown_and_throttled_requests_look_the_same(make_app, count_statements):
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        make_user()
        user = User.by_username('susan')
        user.reset_sent_at = datetime.now(UTC)  # throttled
        db.session.commit()
    responses, statements = [], []
    for address in ('susan@example.com', 'nobody@example.com', 'susan@example.com'):
        client = app.test_client()
        client.get('/reset_password_request')
        with count_statements(app) as counter:
            response = client.post('/reset_password_request', data={'email': address})
        statements.append([re.sub(r'\d+', 'N', s) for s in counter.statements])
        cookie = response.headers['Set-Cookie']
        responses.append(
            (
                response.status_code,
                response.data,
                sorted(
                    (k, v) for k, v in response.headers.items() if k != 'Set-Cookie'
                ),
                cookie.split('=', 1)[0],
                sorted(cookie.split('; ')[1:]),
            )
        )
    assert responses[0] == responses[1] == responses[2]
    # The request path does the same database work whoever asks.
    assert statements[0] == statements[1] == statements[2]


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


def test_console_delivery_without_mail_server(make_app, capsys):
    app = make_app(MAIL_SERVER=None)
    client = app.test_client()
    AuthActions(client).register()
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    deadline = time.monotonic() + 10
    out = ''
    while time.monotonic() < deadline and 'reset_password/' not in out:
        time.sleep(0.1)
        out += capsys.readouterr().out
    assert 'Subject: [Microblog] Reset Your Password' in out
    assert LINK.search(out)


# ---------------------------------------------------------------- email delivery


def queue_emails(app, n: int, to: str = 'reader@example.com') -> list[int]:
    with app.app_context():
        rows = [
            send_email(f'Message {i}', None, [to], f'Body {i}', f'<p>Body {i}</p>')
            for i in range(n)
        ]
        db.session.commit()
        return [row.id for row in rows]


def outbox_rows(app) -> list[OutboxMessage]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(OutboxMessage).order_by('id')))
        db.session.expunge_all()
        return rows


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError('condition not met in time')


def outbox_ids(messages) -> list[int]:
    return sorted(int(m['X-Microblog-Outbox-Id']) for m in messages)


def test_slow_mail_server_does_not_slow_the_request(client, auth, smtp):
    auth.register()
    smtp.handler.delay = 3.0
    response = client.post(
        '/reset_password_request', data={'email': 'susan@example.com'}
    )
    assert response.status_code == 302
    # Had the request waited on SMTP, the message would be delivered by now.
    assert smtp.messages == []
    smtp.wait_for(1, timeout=20)


def test_mail_server_down_then_back_delivers_without_new_request(make_app, smtp):
    late = SMTPSink()  # nothing listens on its port yet
    app = make_app(MAIL_PORT=late.port)
    client = app.test_client()
    with app.app_context():
        make_user()
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    wait_until(lambda: any(r.attempts >= 1 for r in outbox_rows(app)))
    (row,) = outbox_rows(app)
    assert row.status == 'pending' and 'refused' in row.last_error
    time.sleep(5)
    back = int(time.time())
    late.start()
    try:
        (message,) = late.wait_for(1, timeout=40)
        assert message['Subject'] == '[Microblog] Reset Your Password'
    finally:
        late.stop()
    # The link was made when the email went out, not when it was requested,
    # so a long outage does not deliver an expired link...
    token = reset_link(message).rsplit('/', 1)[1]
    assert jwt.decode(token, options={'verify_signature': False})['iat'] >= back
    with app.app_context():
        assert User.verify_reset_password_token(token) is not None
    # ...and the outbox never stored it.
    (row,) = outbox_rows(app)
    assert row.status == 'sent' and row.kind == 'reset_email'
    assert token not in (row.text_body or '') + (row.html_body or '')


def test_recipient_refused_with_550_fails_without_retry(make_app, smtp, caplog):
    caplog.set_level(logging.INFO)
    smtp.handler.reject.add('ghost@example.com')
    app = make_app()
    (bad,) = queue_emails(app, 1, to='ghost@example.com')
    (good,) = queue_emails(app, 1)
    app.extensions['outbox'].wake()
    smtp.wait_for(1)
    wait_until(lambda: outbox_rows(app)[0].status == 'failed')
    time.sleep(1.5)  # past the first retry delay: it must not be retried
    rows = {r.id: r for r in outbox_rows(app)}
    assert rows[bad].status == 'failed' and rows[bad].attempts == 1
    assert '550' in rows[bad].last_error
    assert rows[good].status == 'sent'
    assert outbox_ids(smtp.messages) == [good]
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f'message {bad} failed (permanent failure' in m for m in logged)
    assert not any('Body' in m for m in logged)


@pytest.mark.slow
def test_sigterm_keeps_pending_mail_and_restart_sends_it_once(
    make_app, app_process, tmp_path
):
    sink = SMTPSink()  # down while the first process runs
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    (queued,) = queue_emails(app, 1)
    first = app_process(url, smtp_port=sink.port).start()
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    assert first.terminate() == 0
    (row,) = outbox_rows(app)
    assert row.status == 'pending'

    sink.start()
    try:
        second = app_process(url, smtp_port=sink.port).start()
        sink.wait_for(1, timeout=30)
        time.sleep(2)
        assert outbox_ids(sink.messages) == [queued]
        assert outbox_rows(app)[0].status == 'sent'
        assert second.terminate() == 0
    finally:
        sink.stop()


@pytest.mark.slow
def test_sigterm_finishes_the_message_in_hand(make_app, app_process, smtp):
    smtp.handler.delay = 2.0
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    ids = queue_emails(app, 3)
    first = app_process(url).start()
    wait_until(lambda: any(r.status == 'sending' for r in outbox_rows(app)))
    time.sleep(0.5)  # the first message is now in the server's hands
    assert first.terminate() == 0
    statuses = [r.status for r in outbox_rows(app)]
    assert 'sending' not in statuses  # nothing half-sent or stranded
    assert statuses.count('sent') == len(smtp.messages) >= 1
    assert 'pending' in statuses

    smtp.handler.delay = 0
    second = app_process(url).start()
    smtp.wait_for(3, timeout=30)
    time.sleep(1)
    assert outbox_ids(smtp.messages) == ids  # each exactly once
    assert second.terminate() == 0


@pytest.mark.slow
def test_two_processes_share_the_outbox_without_duplicates(make_app, app_process, smtp):
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    proc = app_process(url, workers=2).start()
    ids = queue_emails(app, 200)
    smtp.wait_for(200, timeout=90)
    time.sleep(1)
    assert outbox_ids(smtp.messages) == ids
    assert {r.status for r in outbox_rows(app)} == {'sent'}
    assert proc.terminate() == 0


@pytest.mark.slow
def test_mail_workers_and_a_web_process_share_the_outbox(
    make_app, app_process, mail_worker, smtp
):
    """Two `flask mail worker` processes and a web process: each once."""
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    workers = [mail_worker(url).start() for _ in range(2)]
    web = app_process(url).start()
    ids = queue_emails(app, 150)
    smtp.wait_for(150, timeout=90)
    time.sleep(1)
    assert outbox_ids(smtp.messages) == ids
    assert {r.status for r in outbox_rows(app)} == {'sent'}
    assert web.terminate() == 0
    for worker in workers:
        assert worker.terminate() == 0
        output = worker.output()
        assert 'SIGTERM: stopping after the message in hand' in output
        assert 'outbox worker stopped' in output


@pytest.mark.slow
def test_mail_worker_finishes_the_message_in_hand_on_sigterm(
    make_app, mail_worker, smtp
):
    smtp.handler.delay = 2.0
    app = make_app(MAIL_SENDER_ENABLED=False)
    url = app.config['SQLALCHEMY_DATABASE_URI']
    ids = queue_emails(app, 3)
    worker = mail_worker(url).start()
    wait_until(lambda: any(r.status == 'sending' for r in outbox_rows(app)))
    time.sleep(0.5)  # the first message is now in the server's hands
    assert worker.terminate() == 0
    statuses = [r.status for r in outbox_rows(app)]
    assert 'sending' not in statuses
    assert statuses.count('sent') == len(smtp.messages) >= 1
    assert 'pending' in statuses
    assert outbox_ids(smtp.messages) == ids[: len(smtp.messages)]


def test_importing_the_app_starts_no_thread(tmp_path):
    """`import microblog` builds the app and starts nothing that lasts (the
    rate limiter's in-memory store arms one 10 ms expiry timer)."""
    code = (
        'import threading, time, microblog; time.sleep(0.3); '
        'print(sorted(t.name for t in threading.enumerate()))'
    )
    env = {**os.environ, 'APP_ENV': 'development', 'SECRET_KEY': 'x' * 40}
    env['DATABASE_URL'] = f'sqlite:///{tmp_path}/none.db'  # no tables: no polling
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, env=env,
        cwd=os.path.dirname(os.path.abspath(__file__)), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['MainThread']"
    assert 'no such table' not in result.stderr


@pytest.mark.slow
def test_concurrent_posting_from_two_workers_loses_nothing(make_app, app_process):
    """SQLite in WAL with a busy timeout: no 'database is locked' reaches a user."""
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        for i in range(4):
            make_user(f'writer{i}')
    proc = app_process(app.config['SQLALCHEMY_DATABASE_URI'], workers=2).start()
    base = f'http://127.0.0.1:{proc.port}'
    statuses = []

    def write(username: str) -> None:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

        def post(path, data):
            body = urllib.parse.urlencode(data).encode()
            opener.addheaders = [('Referer', base + path)]
            with opener.open(base + path, body) as response:
                return response.status, response.geturl()

        page = opener.open(base + '/login').read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
        data = {'csrf_token': token, 'username': username, 'password': PASSWORD}
        post('/login', data)
        for n in range(25):
            statuses.append(
                post('/index', {'csrf_token': token, 'post': f'{username} {n}'})
            )

    threads = [threading.Thread(target=write, args=(f'writer{i}',)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert proc.terminate() == 0
    assert len(statuses) == 100
    assert all(code == 200 and url.endswith('/index') for code, url in statuses)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Post.id))) == 100
    assert 'database is locked' not in proc.output()


def test_burst_of_reset_requests_keeps_threads_bounded(make_app, smtp):
    app = make_app()
    with app.app_context():
        password_hash = generate_password_hash(PASSWORD)
        db.session.execute(
            sa.insert(User),
            [
                {'username': f'user{i}', 'email': f'user{i}@example.com',
                 'password_hash': password_hash}
                for i in range(500)
            ],
        )  # fmt: skip
        db.session.commit()
    client = app.test_client()
    baseline = threading.active_count()
    peak = baseline
    for i in range(500):
        response = client.post(
            '/reset_password_request', data={'email': f'user{i}@example.com'}
        )
        assert response.status_code == 302
        peak = max(peak, threading.active_count())
    smtp.wait_for(500, timeout=120)
    assert peak <= baseline + 1  # at most the one sender thread
    assert len({m['To'] for m in smtp.messages}) == 500


def test_misconfigured_tls_and_login_are_reported_plainly(make_app, smtp, caplog):
    caplog.set_level(logging.INFO)
    app = make_app(MAIL_USE_TLS=True)
    (queued,) = queue_emails(app, 1)
    app.extensions['outbox'].wake()
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    row = outbox_rows(app)[0]
    assert row.status == 'pending'
    assert 'does not offer STARTTLS: set MAIL_USE_TLS=false' in row.last_error
    assert any(f'message {queued} not sent' in r.getMessage() for r in caplog.records)


def test_wrong_smtp_credentials_are_reported_plainly(make_app):
    port = free_port()
    controller = Controller(
        SinkHandler(),
        hostname='127.0.0.1',
        port=port,
        authenticator=lambda *args: AuthResult(success=False, handled=False),
        auth_require_tls=False,
    )
    controller.start()
    try:
        app = make_app(MAIL_PORT=port, MAIL_USERNAME='me', MAIL_PASSWORD='wrong')
        queue_emails(app, 1)
        app.extensions['outbox'].wake()
        wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
        error = outbox_rows(app)[0].last_error
        assert 'SMTP login refused (535)' in error
        assert 'check MAIL_USERNAME and MAIL_PASSWORD' in error
    finally:
        controller.stop()


def test_backoff_grows_with_jitter_and_retry_period_ends(make_app):
    first = [backoff(1) for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in first) and len(set(first)) > 1
    assert all(512 <= backoff(10) <= 1024 for _ in range(20))
    assert backoff(40) <= 3600

    app = make_app(MAIL_RETRY_PERIOD=0, MAIL_PORT=free_port())
    (queued,) = queue_emails(app, 1)
    app.extensions['outbox'].wake()
    wait_until(lambda: outbox_rows(app)[0].status == 'failed')
    assert 'refused' in outbox_rows(app)[0].last_error


def test_mail_cli_status_retry_and_send_test(make_app, smtp):
    app = make_app(MAIL_SENDER_ENABLED=False)
    runner = app.test_cli_runner()
    queue_emails(app, 2)
    with app.app_context():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == 1)
            .values(status='failed', last_error='550 no such user')
        )
        db.session.commit()
    result = runner.invoke(args=['mail', 'status'])
    assert result.exit_code == 0
    assert ' pending: 1' in result.output and '  failed: 1' in result.output
    assert 'oldest pending: ' in result.output and 's old' in result.output

    result = runner.invoke(args=['mail', 'retry'])
    assert '1 failed email(s) queued again.' in result.output
    assert {r.status for r in outbox_rows(app)} == {'pending'}

    result = runner.invoke(args=['mail', 'send-test', 'ops@example.com'])
    assert result.exit_code == 0, result.output
    assert 'sent to the mail server' in result.output
    subjects = [m['Subject'] for m in smtp.wait_for(3)]
    assert '[Microblog] Test message' in subjects


def test_sent_mail_is_pruned_after_retention(make_app, smtp):
    app = make_app(MAIL_RETENTION=0)
    queue_emails(app, 1)
    app.extensions['outbox'].wake()
    smtp.wait_for(1)
    sender = app.extensions['outbox']
    sender._last_upkeep = float('-inf')
    with app.app_context():
        sender.run_once()
    assert outbox_rows(app) == []


def test_production_without_mail_server_keeps_mail_queued(make_app, capsys):
    app = make_app(MAIL_SERVER=None, APP_ENV='production')
    queue_emails(app, 1)
    app.extensions['outbox'].wake()
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    (row,) = outbox_rows(app)
    assert row.status == 'pending' and row.last_error == 'MAIL_SERVER is not set'
    assert 'Body 0' not in capsys.readouterr().out  # not printed in production


def test_every_reset_event_is_audited(client, auth, app, smtp, caplog):
    caplog.set_level(logging.INFO)
    auth.register()
    for _ in range(2):  # the second one is throttled
        client.post('/reset_password_request', data={'email': 'susan@example.com'})
    client.post('/reset_password_request', data={'email': 'nobody@example.com'})
    (message,) = smtp.wait_for(1)
    wait_until(
        lambda: not [r for r in outbox_rows(app) if r.status in ('pending', 'sending')]
    )
    path = reset_link(message).removeprefix('https://microblog.test')
    client.get(path)
    client.get('/reset_password/set-password')
    data = {'password': NEW_PASSWORD, 'password2': NEW_PASSWORD}
    client.post('/reset_password/set-password', data=data)
    client.get(path)
    client.get('/reset_password/set-password')  # used: rejected
    events = [
        json.loads(r.getMessage().removeprefix('audit '))
        for r in caplog.records
        if r.getMessage().startswith('audit ')
    ]
    by_name = {}
    for event in events:
        by_name.setdefault(event['event'], []).append(event)
        assert 'time' in event
    for name in (
        'reset_requested',
        'reset_email_queued',
        'reset_throttled',
        'reset_unknown_address',
        'reset_link_used',
        'reset_completed',
        'reset_token_rejected',
    ):
        assert name in by_name, name
    assert by_name['reset_completed'][0]['account'] == 1
    assert by_name['reset_completed'][0]['client'] == '127.0.0.1'
    assert by_name['reset_token_rejected'][0]['reason'] == 'used'
    assert by_name['reset_unknown_address'][0]['email'] == 'n***@example.com'


# ---------------------------------------------------------------- security


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


# ---------------------------------------------------------------- hardening
# Each guarantee under races, hostile input and failing parts.


def copy_cookie(source, target, name: str) -> None:
    cookie = source.get_cookie(name, domain='microblog.test')
    assert cookie is not None, name
    target.set_cookie(name, cookie.value, domain=cookie.domain)


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


@pytest.mark.skipif(not ON_POSTGRES, reason='PostgreSQL plans')
def test_postgres_plans_each_list_page_once(make_app, count_statements):
    """PostgreSQL keeps one plan for a statement whose parameters are ids:
    LIMIT and OFFSET are written into the SQL. Left as parameters, they
    made the kept plan a full scan, so the server planned every request."""
    app = make_app(MAIL_SENDER_ENABLED=False)  # its thread would take a connection
    with app.app_context():
        reader, writer = make_user('reader'), make_user('writer')
        reader.follow(writer)
        add_posts(writer, 30)
        db.session.commit()
    client = app.test_client()
    AuthActions(client).login('reader')
    pages = ('/index', '/explore', '/explore?page=2', '/user/writer')
    assert client.get('/index').status_code == 200  # last_seen is fresh now
    with app.app_context():
        db.engine.dispose()  # from here on, one connection serves them all
    with count_statements(app) as counter:
        for _ in range(12):  # psycopg prepares from the 6th run on
            for page in pages:
                assert client.get(page).status_code == 200
    listed = {s for s in counter.statements if 'FROM post' in s}
    assert len(listed) == len(pages)
    for statement in listed:
        assert not re.search(r'(LIMIT|OFFSET) %', statement), statement
    with app.app_context():  # that connection
        plans = db.session.execute(
            sa.text(
                'SELECT statement, generic_plans, custom_plans '
                "FROM pg_prepared_statements WHERE statement LIKE '%FROM post%'"
            )
        ).all()
    assert len(plans) == len(pages)
    for statement, generic, custom in plans:
        assert custom <= 5 and generic + custom >= 6, statement


def open_reset_link(app, client, username='susan') -> None:
    with app.app_context():
        token = User.by_username(username).get_reset_password_token()
    assert client.get(f'/reset_password/{token}').status_code == 302


def test_one_reset_link_posted_twice_at_once_changes_the_password_once(make_app, smtp):
    app = make_app()
    AuthActions(app.test_client()).register()
    browsers = [app.test_client(), app.test_client()]
    for browser in browsers:
        open_reset_link(app, browser)
    barrier = threading.Barrier(2)
    answers = []

    def post(browser, password):
        barrier.wait()
        data = {'password': password, 'password2': password}
        answers.append(browser.post('/reset_password/set-password', data=data))

    threads = [
        threading.Thread(target=post, args=(b, f'{NEW_PASSWORD} {i}'))
        for i, b in enumerate(browsers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.location for r in answers) == [
        '/login',
        '/reset_password_problem/used',
    ]
    smtp.wait_for(1)
    time.sleep(1)  # a second notice would have arrived by now
    notices = [m for m in smtp.messages if 'password was changed' in m['Subject']]
    assert len(notices) == 1
    passwords = [f'{NEW_PASSWORD} {i}' for i in range(2)]
    signed_in = [
        AuthActions(app.test_client()).login(password=p).status_code == 302
        for p in passwords
    ]
    assert sorted(signed_in) == [False, True]  # exactly one new password works


def test_reset_compare_and_set_refuses_a_stale_hash(app):
    with app.app_context():
        user = make_user()
        stale = user.password_hash
        assert user.replace_password(stale, NEW_PASSWORD)
        db.session.commit()
        assert not user.replace_password(stale, 'another passphrase here')


def test_an_opened_reset_link_dies_at_sign_in_and_sign_out(make_app):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    AuthActions(app.test_client()).register('other', 'other@example.com')
    open_reset_link(app, client)
    assert client.get('/reset_password/set-password').status_code == 200
    AuthActions(client).login('other')
    AuthActions(client).logout()
    response = client.get('/reset_password/set-password')
    assert response.status_code == 302
    assert response.location == '/reset_password_problem/invalid'


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
    monkeypatch.setattr('app.auth.routes.email_taken', lambda *a: False)
    response = AuthActions(client).register('SAME', 'second@example.com')
    assert response.status_code == 200
    assert b'Please use a different username.' in response.data
    # An address taken at the same instant: the usual answer, and a notice.
    response = AuthActions(client).register('other', 'first@example.com')
    assert response.status_code == 302
    smtp.take('Someone tried to sign up', 'first@example.com')
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


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


def test_twenty_follows_at_once_are_one_follow(make_app, monkeypatch):
    app = make_app()
    with app.app_context():
        make_user('star')
    clients = []
    for _ in range(20):
        client = app.test_client()
        AuthActions(client).login() if clients else AuthActions(client).register()
        clients.append(client)
    AuthActions(clients[0]).login()
    # Every request passes the "already following?" check, as at one instant.
    monkeypatch.setattr(User, 'is_following', lambda self, user: False)
    barrier = threading.Barrier(20)
    statuses = []

    def follow(client):
        barrier.wait()
        statuses.append(client.post('/follow/star').status_code)

    threads = [threading.Thread(target=follow, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [302] * 20
    with app.app_context():
        assert User.by_username('star').followers_count() == 1


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


@pytest.mark.slow
def test_gunicorn_access_log_redacts_reset_tokens(make_app, app_process):
    app = make_app(MAIL_SENDER_ENABLED=False)
    proc = app_process(app.config['SQLALCHEMY_DATABASE_URI']).start()
    url = f'http://127.0.0.1:{proc.port}/reset_password/secret.token-value'
    urllib.request.urlopen(urllib.request.Request(url, method='GET')).close()
    assert proc.terminate() == 0
    output = proc.output()
    assert '/reset_password/[redacted]' in output
    assert 'secret.token-value' not in output


@pytest.mark.skipif(not ON_POSTGRES, reason='a server restart needs PostgreSQL')
def test_a_database_restart_costs_no_request(make_app):
    # No mail sender: its thread could meet the dead connections first.
    app = make_app(MAIL_SENDER_ENABLED=False)
    client, other = app.test_client(), app.test_client()
    AuthActions(client).register()
    for browser in (client, other):
        AuthActions(browser).login()
        assert browser.get('/index').status_code == 200
    admin = sa.create_engine(os.environ['TEST_DATABASE_URL'])
    with admin.connect() as conn:
        # As after a restart: the old server processes are gone (waits 5 s).
        killed = conn.scalar(
            sa.text(
                'SELECT count(pg_terminate_backend(pid, 5000)) '
                'FROM pg_stat_activity '
                'WHERE datname = current_database() AND pid <> pg_backend_pid()'
            )
        )
    admin.dispose()
    assert killed >= 1
    # Two requests at the same instant, each handed a dead pooled connection.
    barrier = threading.Barrier(2)
    statuses = []

    def read(browser) -> None:
        barrier.wait()
        statuses.append(browser.get('/explore').status_code)

    threads = [threading.Thread(target=read, args=(b,)) for b in (client, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    for path in ('/index', '/explore', '/user/susan', '/index'):
        assert client.get(path).status_code == 200
    client.post('/index', data={'post': 'after the restart'})
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Post.id))) == 1


class DriverConnection:
    """What the pool's check needs of a driver's connection: a socket."""

    closed = False

    def __init__(self, sock):
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()


def test_a_connection_the_server_closed_is_not_reused():
    """The check before use reads the socket: no round trip to the server."""
    for last_words in (b'', b'E\x00\x00\x00\x10SFATAL\x00'):
        ours, servers = socket.socketpair()
        connection = DriverConnection(ours)
        assert database.is_open(connection)
        servers.sendall(last_words)
        servers.close()
        assert not database.is_open(connection)
        with pytest.raises(sa.exc.DisconnectionError):
            database._refuse_if_closed(connection, None, None)
        ours.close()
    connection.closed = True
    assert not database.is_open(connection)


@pytest.mark.skipif(not ON_POSTGRES, reason='transactions on PostgreSQL')
def test_reads_skip_the_transaction_and_writes_keep_it(app):
    """On PostgreSQL a GET sends no BEGIN (and no ROLLBACK after); a POST's
    statements are one transaction."""
    from psycopg.pq import TransactionStatus

    def status(method: str) -> TransactionStatus:
        with app.test_request_context('/index', method=method):
            db.session.execute(sa.select(1))
            driver = db.session.connection().connection.driver_connection
            return driver.info.transaction_status

    assert status('GET') == TransactionStatus.IDLE
    assert status('HEAD') == TransactionStatus.IDLE
    assert status('POST') == TransactionStatus.INTRANS
    with app.test_request_context('/index'):  # a GET that writes
        db.session.add(User(username='ghost', email='ghost@example.com'))
        db.session.flush()
        assert User.by_username('ghost') is not None  # it reads its write
        driver = db.session.connection().connection.driver_connection
        assert driver.info.transaction_status == TransactionStatus.INTRANS
        db.session.rollback()
        assert User.by_username('ghost') is None
    with app.app_context():  # the mail sender, the CLI: transactions
        db.session.execute(sa.select(1))
        driver = db.session.connection().connection.driver_connection
        assert driver.info.transaction_status == TransactionStatus.INTRANS


def smtp_server(**params):
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname='127.0.0.1', port=port, **params)
    controller.start()
    return controller, handler, port


@pytest.mark.parametrize('smtputf8', [True, False])
def test_one_message_never_holds_up_another(make_app, smtputf8):
    controller, handler, port = smtp_server(enable_SMTPUTF8=smtputf8)
    try:
        app = make_app(MAIL_PORT=port, MAIL_SENDER_ENABLED=False)
        ids = []
        for to in ('one@example.com', 'j\u00f6rg@example.com', 'x@b\u00fccher.example'):
            ids += queue_emails(app, 1, to=to)
        with app.app_context():
            app.extensions['outbox'].run_once()  # one pass, one batch
        rows = {r.id: r for r in outbox_rows(app)}
        envelopes = [rcpt for _, rcpts in handler.envelopes for rcpt in rcpts]
        assert rows[ids[0]].status == 'sent' and rows[ids[2]].status == 'sent'
        assert 'x@xn--bcher-kva.example' in envelopes  # IDNA domain
        if smtputf8:
            assert rows[ids[1]].status == 'sent'
            assert 'j\u00f6rg@example.com' in envelopes
        else:
            assert rows[ids[1]].status == 'failed'
            assert 'does not offer SMTPUTF8' in rows[ids[1]].last_error
    finally:
        controller.stop()


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


@pytest.mark.parametrize(
    'password', ['susan-rocks-2026', 'xx SUSAN.BLOGS xx', 'my microblog pass']
)
def test_passwords_avoid_context_words(client, password):
    response = AuthActions(client).register(
        'susan', 'susan.blogs@example.com', password=password
    )
    assert response.status_code == 200
    assert b'Do not use your username, your email address' in response.data


def test_reset_password_avoids_context_words(make_app):
    app = make_app()
    client = app.test_client()
    AuthActions(client).register()
    open_reset_link(app, client)
    data = {'password': 'Susan the great', 'password2': 'Susan the great'}
    response = client.post('/reset_password/set-password', data=data)
    assert b'Do not use your username' in response.data


def test_pages_for_signed_in_users_are_not_cached(client, auth):
    assert 'no-store' not in client.get('/login').headers.get('Cache-Control', '')
    auth.register()
    auth.login()
    for path in ('/index', '/explore', '/user/susan', '/edit_profile'):
        assert client.get(path).headers['Cache-Control'] == 'no-store'
    assert 'no-store' not in client.get('/static/favicon.svg').headers.get(
        'Cache-Control', ''
    )


# ---------------------------------------------------------------- account


CONFIRM_PATH = re.compile(r'https://microblog\.test(/(?:confirm|revert)_email/[\w.-]+)')


def emailed_path(message) -> str:
    return CONFIRM_PATH.search(message.get_body(('plain',)).get_content())[1]


def use_link(client, path: str, **form):
    """Open an emailed link and press its confirming button."""
    landing = client.get(path)
    assert landing.status_code == 302 and 'confirm' in landing.location
    return client.post(landing.location, data=form)


def test_sign_up_is_confirmed_from_the_emailed_link(client, smtp):
    auth = AuthActions(client, smtp)
    response = auth.register(confirm=False)
    assert response.location == '/login'
    assert b'Check your email to finish signing up.' in client.get('/login').data
    message = smtp.take('Confirm your email address', 'susan@example.com')
    assert auth.login().status_code == 302  # unconfirmed: can sign in and read
    page = client.get('/index')
    assert b'Resend the confirmation email' in page.data
    refused = client.post('/index', data={'post': 'too early'})
    assert refused.location == '/index'
    assert b'Confirm your email address first' in client.get('/index').data
    assert client.get('/explore').status_code == 200

    path = emailed_path(message)
    landing = client.get(path)
    assert landing.location == '/confirm_email/confirm'
    assert landing.headers['Referrer-Policy'] == 'no-referrer'
    page = client.get('/confirm_email/confirm')
    assert b'Confirm <strong>susan@example.com</strong>' in page.data
    assert client.post('/confirm_email/confirm').location == '/index'
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
    assert client.post('/resend_confirmation').status_code == 302
    message = smtp.take('Confirm your email address', 'susan@example.com')
    assert client.post('/resend_confirmation').status_code == 429
    assert use_link(client, emailed_path(message)).location == '/index'


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
    assert (
        b'belongs to another account' in change_email(client, 'OTHER@Example.com').data
    )
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


def test_a_completed_reset_confirms_the_address(make_app, smtp):
    app = make_app()
    client = app.test_client()
    AuthActions(client, smtp).register(confirm=False)
    smtp.take('Confirm your email address', 'susan@example.com')
    open_reset_link(app, client)
    data = {'password': NEW_PASSWORD, 'password2': NEW_PASSWORD}
    assert client.post('/reset_password/set-password', data=data).status_code == 302
    with app.app_context():
        assert User.by_username('susan').email_confirmed


# ---------------------------------------------------------------- recovery


def reset_token_for(app, username='susan', expires_in=600) -> str:
    with app.app_context():
        return User.by_username(username).get_reset_password_token(expires_in)


@pytest.mark.parametrize('reason', ['expired', 'used'])
def test_a_dead_reset_link_explains_itself_and_offers_a_new_one(make_app, smtp, reason):
    app = make_app()
    client = app.test_client()
    with app.app_context():
        make_user()
    token = reset_token_for(app, expires_in=-1 if reason == 'expired' else 600)
    if reason == 'used':
        with app.app_context():
            User.by_username('susan').set_password(NEW_PASSWORD)
            db.session.commit()
    client.get(f'/reset_password/{token}')
    response = client.get('/reset_password/set-password')
    assert response.location == f'/reset_password_problem/{reason}'
    page = client.get(response.location).data.decode()
    heading = {'expired': 'has expired', 'used': 'was already used'}[reason]
    assert heading in page and 'Send me a new link' in page
    if reason == 'expired':
        assert 'links last 10 minutes' in page
    assert 'susan@example.com' not in page  # the address is never shown
    sent = client.post(f'/reset_password_problem/{reason}')
    assert sent.location == '/reset_password_request/sent'
    message = smtp.take('Reset Your Password', 'susan@example.com')
    assert reset_link(message)
    # The offer was for that one link: posting again sends nothing more.
    assert client.post(f'/reset_password_problem/{reason}').status_code == 200


def test_someone_elses_account_cannot_be_reached_from_a_dead_link(client):
    """Only a genuine link names an account: a forged one offers nothing."""
    forged = jwt.encode({'reset_password': 1, 'exp': 1}, 'x' * 40, algorithm='HS256')
    client.get(f'/reset_password/{forged}')
    response = client.get('/reset_password/set-password')
    assert response.location == '/reset_password_problem/invalid'
    assert b'Send me a new link' not in client.get(response.location).data
    assert client.get('/reset_password_problem/other').status_code == 404


def test_the_page_after_a_reset_request_says_what_to_look_for(client):
    response = client.post('/reset_password_request', data={'email': 'a@b.example'})
    page = client.get(response.location).data.decode()
    assert "Didn't get the email?" in page or 'Didn&#39;t get the email?' in page
    for words in (
        'no-reply@microblog.test',
        '[Microblog] Reset Your Password',
        'spam',
        'lasts 10 minutes',
        'ask again',
    ):
        assert words in page


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
    assert re.search(r'When: \w+day \d+ \w+ 20\d\d, \d\d:\d\d UTC', text)
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


def test_reset_mail_goes_first_and_never_arrives_stale(make_app, smtp, caplog):
    app = make_app(MAIL_SENDER_ENABLED=False, RESET_TOKEN_EXPIRES=1)
    with app.app_context():
        make_user()
        make_user('bob')
    queue_emails(app, 3)
    client = app.test_client()
    client.post('/reset_password_request', data={'email': 'bob@example.com'})
    time.sleep(1.2)  # bob's request is now older than a link would live
    client.post('/reset_password_request', data={'email': 'susan@example.com'})
    with app.app_context():
        app.extensions['outbox'].run_once()
    subjects = [m['Subject'] for m in smtp.wait_for(4)]
    assert subjects[0] == '[Microblog] Reset Your Password'
    assert [m['To'] for m in smtp.messages].count('bob@example.com') == 0
    statuses = {r.status for r in outbox_rows(app)}
    assert statuses == {'sent', 'expired'}
    assert any('expired unsent' in r.getMessage() for r in caplog.records)


def test_messages_carry_a_stable_message_id_and_the_expected_headers(make_app, smtp):
    late = SMTPSink()  # down for the first attempt
    app = make_app(MAIL_PORT=late.port)
    (queued,) = queue_emails(app, 1)
    wait_until(lambda: outbox_rows(app)[0].attempts >= 1)
    (row,) = outbox_rows(app)
    assert row.message_id.endswith('@microblog.test>')
    late.start()
    try:
        (message,) = late.wait_for(1, timeout=40)
    finally:
        late.stop()
    assert message['Message-ID'] == row.message_id  # kept across the retry
    assert message['Auto-Submitted'] == 'auto-generated'
    assert message['Date']
    assert 'X-Microblog-Outbox-Id' in message


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


def run_doctor(app, *args):
    return app.test_cli_runner().invoke(args=['mail', 'doctor', *args])


def test_mail_doctor_reports_a_healthy_server_and_writes_a_preview(make_app, tmp_path):
    controller, handler, port = smtp_server(
        enable_SMTPUTF8=True,
        authenticator=lambda server, session, envelope, mechanism, auth: AuthResult(
            success=auth.login == b'me' and auth.password == b'right'
        ),
        auth_require_tls=False,
    )
    try:
        app = make_app(
            MAIL_PORT=port, MAIL_USERNAME='me', MAIL_PASSWORD='right',
            MAIL_SENDER_ENABLED=False,
        )  # fmt: skip
        result = run_doctor(app, '--preview', str(tmp_path / 'preview'))
        assert result.exit_code == 0, result.output
        assert f'connecting to 127.0.0.1:{port} with no encryption' in result.output
        assert 'login accepted for me' in result.output
        assert 'SMTPUTF8: supported' in result.output
        assert 'From address: no-reply@microblog.test' in result.output
        text = (tmp_path / 'preview' / 'reset_password.txt').read_text()
        assert 'https://microblog.test/reset_password/' in text
        assert (tmp_path / 'preview' / 'reset_password.html').exists()
    finally:
        controller.stop()
    assert handler.messages == [] and handler.envelopes == []  # sent nothing


@pytest.mark.parametrize(
    'settings, params, words',
    [
        ({'MAIL_USE_TLS': True}, {}, 'does not offer STARTTLS'),
        ({'MAIL_USE_SSL': True}, {}, 'implicit TLS failed'),
        (
            {'MAIL_USERNAME': 'me', 'MAIL_PASSWORD': 'wrong'},
            {
                'authenticator': lambda *a: AuthResult(success=False, handled=False),
                'auth_require_tls': False,
            },
            'login refused (535): check MAIL_USERNAME and MAIL_PASSWORD',
        ),
        ({}, None, 'connection refused by 127.0.0.1'),
        ({'MAIL_DEFAULT_SENDER': 'x@elsewhere.example'}, {}, 'not on SERVER_NAME'),
        ({}, {'enable_SMTPUTF8': False}, 'SMTPUTF8: not offered'),
    ],
)
def test_mail_doctor_says_what_to_change(make_app, settings, params, words):
    controller = None
    if params is None:
        port = free_port()  # nothing listens: the server is down
    else:
        controller, _, port = smtp_server(**params)
    try:
        app = make_app(MAIL_PORT=port, MAIL_SENDER_ENABLED=False, **settings)
        result = run_doctor(app)
    finally:
        if controller is not None:
            controller.stop()
    assert words in result.output, result.output
    healthy = 'not on SERVER_NAME' in words or 'not offered' in words
    assert result.exit_code == (0 if healthy else 1)


# ---------------------------------------------------------------- migrations


def empty_database_app(make_app, tmp_path):
    """An app on an empty database: PostgreSQL's test database emptied, or a
    fresh SQLite file (its own, as Alembic's batch mode needs a real file)."""
    app = make_app()
    if not os.environ.get('TEST_DATABASE_URL'):
        url = f'sqlite:///{tmp_path}/migrated.db'
        config = type(
            'C',
            (TestConfig,),
            {'SQLALCHEMY_DATABASE_URI': url, 'MAIL_SENDER_ENABLED': False},
        )
        app = create_app(config)
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE IF EXISTS alembic_version'))
    return app


def test_migrations_match_models_and_downgrade(make_app, tmp_path):
    app = empty_database_app(make_app, tmp_path)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
        downgrade(revision='base')
        tables = set(sa.inspect(db.engine).get_table_names()) - {'alembic_version'}
        assert tables == set()
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE alembic_version'))


def test_migration_brings_usernames_to_one_canonical_form(make_app, tmp_path):
    app = empty_database_app(make_app, tmp_path)
    with app.app_context():
        upgrade(revision='0001')
        names = ['Carol', 'dave', 'carol', '\uff43\uff41\uff52\uff4f\uff4c']
        with db.engine.begin() as conn:
            for i, name in enumerate(names, start=1):
                conn.execute(
                    sa.text(
                        'INSERT INTO "user" (id, username, email, session_token) '
                        'VALUES (:id, :name, :email, :token)'
                    ),
                    {'id': i, 'name': name, 'email': f'u{i}@x.org', 'token': f't{i}'},
                )
        upgrade()
        rows = db.session.execute(
            sa.select(User.id, User.username, User.username_key).order_by(User.id)
        ).all()
        assert rows == [
            (1, 'Carol', 'carol'),
            (2, 'dave', 'dave'),
            (3, 'carol-3', 'carol-3'),
            (4, '\uff43\uff41\uff52\uff4f\uff4c-4', 'carol-4'),
        ]
        # Accounts from before confirmation existed count as confirmed.
        assert all(db.session.scalars(sa.select(User.email_confirmed)))
        db.session.remove()
        downgrade(revision='base')
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE alembic_version'))


# ---------------------------------------------------------------- browser
# Debian's Chromium driven by Playwright against the app on a real server.


def check_page(page, shot: str | None = None) -> None:
    """No console errors, nothing from other hosts, a label on every field."""
    page.wait_for_load_state('load')
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select')]
            .filter(el => !['hidden', 'submit', 'button'].includes(el.type))
            .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
            .map(el => el.name)"""
    )
    assert unlabelled == [], f'fields without a label on {page.url}'
    assert page.watch.console_errors == [], page.url
    assert page.watch.foreign_requests == [], page.url
    if shot:
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, f'{shot}.png'), full_page=True)


def browser_register(page, smtp, username: str) -> None:
    """Sign up, then confirm the address from the emailed link."""
    page.goto('/register')
    check_page(page)
    page.fill('input[name=username]', username)
    page.fill('input[name=email]', f'{username}@example.com')
    page.fill('input[name=password]', PASSWORD)
    page.fill('input[name=password2]', PASSWORD)
    page.click('input[type=submit]')
    page.wait_for_url('**/login')
    page.wait_for_selector('text=Check your email to finish signing up.')
    check_page(page)
    browser_follow_confirmation(page, smtp, f'{username}@example.com')
    page.wait_for_selector('text=your email address is confirmed')


def browser_follow_confirmation(page, smtp, address: str, shot=None) -> None:
    message = smtp.take('Confirm your', address)
    link = re.search(
        r'http://\S+/confirm_email/[\w.-]+', message.get_body(('plain',)).get_content()
    )[0]
    page.goto(link)
    page.wait_for_url('**/confirm_email/confirm')
    check_page(page, shot)
    page.click('input[value=Confirm]')


def browser_login(page, username: str, password: str = PASSWORD) -> None:
    page.goto('/login')
    page.fill('input[name=username]', username)
    page.fill('input[name=password]', password)
    page.click('input[type=submit]')


def browser_menu(page, item: str) -> None:
    """Open the account menu under the user's name and choose `item`."""
    page.click('nav .dropdown-toggle')
    page.click(f'nav .dropdown-menu >> text={item}')


def browser_logout(page) -> None:
    browser_menu(page, 'Sign out')
    page.wait_for_selector('text=You have been signed out.')


@pytest.mark.browser
def test_browser_story(page, live_server, smtp, browser):
    browser_register(page, smtp, 'alice')
    browser_register(page, smtp, 'bob')

    browser_login(page, 'alice')
    page.wait_for_url('**/index')
    for i in range(4):
        page.fill('textarea[name=post]', f'Hello from Alice {i}')
        page.click('input[type=submit]')
        page.wait_for_selector('text=Your post is now live!')
    check_page(page)
    browser_logout(page)
    check_page(page, 'login')

    browser_login(page, 'bob')
    page.wait_for_url('**/index')
    assert 'Hello from Alice' not in page.content()
    page.click('nav >> text=Explore')
    page.wait_for_url('**/explore')
    check_page(page)
    assert 'Hello from Alice 3' in page.content()
    page.click('text=Older posts')  # POSTS_PER_PAGE is 3
    page.wait_for_url('**/explore?page=2')
    assert 'Hello from Alice 0' in page.content()
    check_page(page)
    page.click('a:has-text("alice") >> nth=0')
    page.wait_for_url('**/user/alice')
    page.click('input[value=Follow]')
    page.wait_for_selector('text=You are following alice!')
    check_page(page, 'profile')
    page.click('nav >> text=Home')
    page.wait_for_url('**/index')
    assert 'Hello from Alice 3' in page.content()
    check_page(page, 'timeline')

    browser_menu(page, 'Profile')
    page.click('text=Edit your profile')
    page.fill('textarea[name=about_me]', 'Bob builds things.')
    page.click('input[type=submit]')
    page.wait_for_selector('text=Your changes have been saved.')
    check_page(page)
    page.goto('/user/bob')
    assert 'Bob builds things.' in page.content()

    # Change email: nothing changes until the new address is confirmed.
    browser_menu(page, 'Settings')
    check_page(page, 'settings')
    page.click('text=Change email address')
    page.fill('input[name=current_password]', PASSWORD)
    page.fill('input[name=email]', 'bob@new.example')
    page.click('input[type=submit]')
    page.wait_for_selector('text=We sent a link to bob@new.example')
    browser_follow_confirmation(page, smtp, 'bob@new.example', 'confirm_email')
    page.wait_for_selector('text=Your email address is now bob@new.example.')
    smtp.take('Your email address was changed', 'bob@example.com')

    # A second browser signs in; the first signs it out from /sessions.
    laptop = browser.new_context(base_url=live_server.url).new_page()
    browser_login(laptop, 'bob')
    laptop.wait_for_url('**/index')
    page.goto('/sessions')
    check_page(page, 'sessions')
    assert page.locator('tbody tr').count() == 2
    page.click('tbody tr:not(:has-text("this browser")) button:has-text("Sign out")')
    page.wait_for_selector('text=That session was signed out.')
    assert page.locator('tbody tr').count() == 1
    laptop.goto('/index')
    laptop.wait_for_url('**/login?next=%2Findex')
    laptop.context.close()
    browser_logout(page)

    page.click('text=Reset it by email')
    page.wait_for_url('**/reset_password_request')
    check_page(page, 'reset_request')
    page.fill('input[name=email]', 'bob@new.example')
    page.click('input[type=submit]')
    page.wait_for_selector('text=Check your email for the instructions')
    message = smtp.take('Reset Your Password', 'bob@new.example')
    link = reset_link(message)
    assert link.startswith(live_server.url + '/reset_password/')

    page.goto(link)
    page.wait_for_url('**/reset_password/set-password')
    check_page(page, 'reset_form')
    page.fill('input[name=password]', NEW_PASSWORD)
    page.fill('input[name=password2]', NEW_PASSWORD)
    page.click('input[type=submit]')
    page.wait_for_selector('text=Your password has been reset.')

    browser_login(page, 'bob', PASSWORD)
    page.wait_for_selector('text=Invalid username or password')
    browser_login(page, 'bob', NEW_PASSWORD)
    page.wait_for_url('**/index')
    check_page(page)
    browser_logout(page)

    # An expired link explains itself and offers a new one.
    with live_server.app.app_context():
        expired = User.by_username('bob').get_reset_password_token(-1)
    page.goto(f'/reset_password/{expired}')
    page.wait_for_url('**/reset_password_problem/expired')
    check_page(page, 'reset_expired')
    page.click('button:has-text("Send me a new link")')
    page.wait_for_url('**/reset_password_request/sent')
    check_page(page, 'reset_sent')
    assert reset_link(smtp.take('Reset Your Password', 'bob@new.example'))


def test_empty_states_guide_and_navigation_marks_the_page(app, client, auth):
    auth.register()
    auth.login()
    page = client.get('/index').data.decode()
    assert 'Your timeline is empty, for now' in page
    assert 'Write your first post above' in page and 'href="/explore"' in page
    assert 'aria-label="Pages"' not in page  # no pager for one page
    assert '<a class="nav-link active" aria-current="page" href="/index">' in page
    assert 'You have not posted yet.' in client.get('/user/susan').data.decode()
    with app.app_context():
        make_user('quiet')
    assert 'quiet has not posted yet.' in client.get('/user/quiet').data.decode()
    explore = client.get('/explore').data.decode()
    assert 'aria-current="page" href="/explore"' in explore
    # The theme is chosen in <head>, before the stylesheet: no flash.
    head = page.split('</head>')[0]
    assert head.index('js/theme.js') < head.index('bootstrap.min.css')


AXE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'node_modules',
                   'axe-core', 'axe.min.js')  # fmt: skip
AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']
SIGNED_OUT_PAGES = {
    'login': '/login',
    'register': '/register',
    'reset-request': '/reset_password_request',
    'reset-sent': '/reset_password_request/sent',
    'reset-expired': '/reset_password_problem/expired',
    'reset-invalid': '/reset_password_problem/invalid',
    'not-found': '/no/such/page',
}
SIGNED_IN_PAGES = {
    'timeline': '/index',
    'explore': '/explore',
    'profile': '/user/alice',
    'other-profile': '/user/bob',
    'edit-profile': '/edit_profile',
    'settings': '/settings',
    'change-password': '/change_password',
    'change-email': '/change_email',
    'sessions': '/sessions',
}


def seed_people(app, zone: str = 'UTC') -> None:
    """alice follows bob, who posted 5 minutes ago, yesterday (noon in
    `zone`) and 40 days ago; carol follows nobody and has not posted."""
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo(zone)) - timedelta(days=1)
    yesterday = local.replace(hour=12, minute=0).astimezone(UTC)
    stamps = [now - timedelta(minutes=5), yesterday, now - timedelta(days=40)]
    with app.app_context():
        alice, bob = make_user('alice'), make_user('bob')
        make_user('carol')
        for i, stamp in enumerate(stamps):
            db.session.add(Post(body=f'Post {i} by bob', author=bob, timestamp=stamp))
        alice.follow(bob)
        db.session.commit()


def alice_at_home(browser, live_server, zone: str = 'UTC', **options):
    """seed_people(), then alice signed in on her timeline in a new page."""
    seed_people(live_server.app, zone)
    page = new_page(browser, live_server, **options)
    browser_login(page, 'alice')
    page.wait_for_url('**/index')
    return page


def new_page(browser, live_server, **options):
    context = browser.new_context(base_url=live_server.url, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.watch = PageWatch(page, live_server.url)
    return page


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=AXE)
    found = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})
            .then(r => r.violations.map(v => v.id + ': ' +
                v.nodes.map(n => n.target.join(' ') + ' (' +
                    (n.any[0] || n.all[0] || {message: ''}).message + ')')
                .join(', ')))""",
        AXE_TAGS,
    )
    return found


@pytest.mark.browser
@pytest.mark.parametrize('theme', ['light', 'dark'])
@pytest.mark.parametrize('width', [390, 1280])
def test_every_page_passes_axe_in_both_themes_and_widths(
    browser, live_server, width, theme
):
    if not os.path.exists(AXE):
        message = f'{AXE} not found: `make test` installs axe-core with npm'
        if os.environ.get('REQUIRE_BROWSER'):
            pytest.fail(message)
        pytest.skip(message)
    seed_people(live_server.app)
    page = new_page(
        browser, live_server, viewport={'width': width, 'height': 900},
        color_scheme=theme, bypass_csp=True,  # only to inject axe
    )  # fmt: skip
    folder = os.path.join(ARTIFACTS, 'pages')
    os.makedirs(folder, exist_ok=True)
    problems = {}

    def visit(name, path=None):
        if path:
            page.goto(path)
        assert page.evaluate('document.documentElement.dataset.bsTheme') == theme
        page.screenshot(path=os.path.join(folder, f'{name}-{width}-{theme}.png'),
                        full_page=True)  # fmt: skip
        found = axe_violations(page)
        if found:
            problems[name] = found

    for name, path in SIGNED_OUT_PAGES.items():
        visit(name, path)
    browser_login(page, 'nobody', 'wrong password!')  # a form with errors
    page.wait_for_selector('text=Invalid username or password')
    visit('login-error')
    browser_login(page, 'alice')
    page.wait_for_url('**/index')
    for name, path in SIGNED_IN_PAGES.items():
        visit(name, path)
    page.goto('/index')
    page.fill('textarea[name=post]', 'x' * 150)
    page.click('input[value=Post]')
    page.wait_for_selector('.invalid-feedback')
    visit('post-error')
    page.context.close()
    page = new_page(browser, live_server, viewport={'width': width, 'height': 900},
                    color_scheme=theme, bypass_csp=True)  # fmt: skip
    browser_login(page, 'carol')
    page.wait_for_url('**/index')
    visit('empty-timeline', '/index')
    visit('empty-profile', '/user/carol')
    page.context.close()
    assert problems == {}


@pytest.mark.browser
def test_times_read_in_the_readers_time_zone(browser, live_server):
    zone = 'Pacific/Auckland'
    page = alice_at_home(browser, live_server, zone, timezone_id=zone)
    times = page.locator('article time')
    assert times.nth(0).inner_text() == '5 minutes ago'
    assert times.nth(1).inner_text() == 'yesterday'
    assert re.fullmatch(r'\d{1,2} \w{3} 20\d\d|\w{3} \d{1,2}, 20\d\d',
                        times.nth(2).inner_text())  # fmt: skip
    stamp = datetime.fromisoformat(times.nth(0).get_attribute('datetime'))
    local = stamp.astimezone(ZoneInfo('Pacific/Auckland'))
    title = times.nth(0).get_attribute('title')
    assert f'{local:%-I:%M}' in title or f'{local:%H:%M}' in title
    check_page(page)
    page.context.close()
    plain = new_page(browser, live_server, java_script_enabled=False)
    browser_login(plain, 'alice')
    plain.wait_for_url('**/index')
    assert plain.locator('article time').nth(0).inner_text().endswith(' UTC')
    plain.context.close()


@pytest.mark.browser
def test_the_composer_counts_and_posts_with_ctrl_enter(browser, live_server):
    page = alice_at_home(browser, live_server)
    counter = page.locator('#post-count')
    assert counter.inner_text() == '140 characters left'
    box = page.locator('textarea[name=post]')
    box.fill('a' * 130 + '\n' + 'é' * 8)  # a line break counts once
    assert counter.inner_text() == '1 character left'
    box.fill('b' * 142)
    assert counter.inner_text() == '2 characters too many'
    assert box.get_attribute('aria-invalid') == 'true'
    box.fill('line one\nline two ' + 'c' * 122)  # exactly 140
    box.press('Control+Enter')
    page.wait_for_selector('text=Your post is now live!')
    assert 'line two' in page.locator('article').first.inner_text()
    page.context.close()


@pytest.mark.browser
def test_the_whole_story_works_from_the_keyboard(browser, live_server):
    page = alice_at_home(browser, live_server)
    page.keyboard.press('Tab')
    focused = page.evaluate('document.activeElement.textContent.trim()')
    assert focused == 'Skip to main content'
    outline = page.evaluate(
        "getComputedStyle(document.activeElement).boxShadow + ' ' + "
        'getComputedStyle(document.activeElement).outlineStyle'
    )
    assert outline.strip() not in ('none none', '')  # a visible focus ring
    page.keyboard.press('Enter')
    assert page.evaluate('document.activeElement.id') == 'main'
    page.keyboard.press('Tab')  # into the content: the composer
    page.keyboard.type('Typed without a mouse')
    page.keyboard.press('Control+Enter')
    page.wait_for_selector('text=Your post is now live!')
    page.focus('nav .dropdown-toggle')
    page.keyboard.press('Enter')
    page.keyboard.press('ArrowDown')
    assert page.evaluate('document.activeElement.textContent.trim()') == 'Profile'
    page.keyboard.press('Enter')
    page.wait_for_url('**/user/alice')
    assert 'Typed without a mouse' in page.content()
    page.context.close()


@pytest.mark.slow
def test_env_example_configures_a_working_development_app(tmp_path):
    """Every value in .env.example parses, and the app it describes starts."""
    root = os.path.dirname(os.path.abspath(__file__))
    example = dotenv_values(os.path.join(root, '.env.example'))
    env = {k: v or '' for k, v in example.items()}
    env = {**os.environ, **env, 'DATABASE_URL': f'sqlite:///{tmp_path}/dev.db'}
    code = (
        'from app import create_app; app = create_app(); '
        "assert app.config['APP_ENV'] == 'development'; "
        "assert app.config['SERVER_NAME'] == 'localhost:5000'; "
        "assert app.config['MAIL_USE_TLS'] is False; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        env={**env, 'MAIL_SENDER_ENABLED': 'false'},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == 'ok', result.stderr


# ---------------------------------------------------------------- structure


def test_mail_engine_knows_no_feature_and_modules_stay_small():
    root = os.path.dirname(os.path.abspath(__file__))
    engine = os.path.join(root, 'app', 'outbox')
    for name in os.listdir(engine):
        if name.endswith('.py'):
            with open(os.path.join(engine, name), encoding='utf-8') as f:
                source = f.read()
            assert 'app.auth' not in source and 'User' not in source, name
    for folder, _, files in os.walk(os.path.join(root, 'app')):
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(folder, name), encoding='utf-8') as f:
                    assert len(f.readlines()) <= 300, name
