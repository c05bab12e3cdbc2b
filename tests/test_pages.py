"""The pages a reader sees: timeline, explore, profiles, the composer and
errors, with their escaping and a constant number of statements."""

import re
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app import db, timeline
from app.models import Post, User
from app.testing import AuthActions
from app.testing.data import add_posts, make_user


def test_pages_require_login(client):
    for url in ('/', '/index', '/explore', '/user/susan', '/edit_profile'):
        response = client.get(url)
        assert response.status_code == 302
        assert response.location.startswith('/login?next=')


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
