"""Microblog's fast model-level suite: users and passwords, avatars, follows,
the timeline's order and the signed tokens.

Everything else lives in tests/, one module per room:

- test_pages.py: the pages a reader sees, their statements and escaping
- test_auth.py: sign-up, confirmation, sign-in and sign-out, usernames
- test_account.py: settings, password and email changes, sessions, notices
- test_recovery.py: the password reset, from request to dead links
- test_outbox.py: email delivery through the outbox
- test_mail_cli.py: `flask mail` status, retry, send-test and doctor
- test_processes.py: gunicorn and `flask mail worker` processes (slow)
- test_security.py: headers, cookies, CSRF, production refusals, hostile
  input, rate limits, key rotation
- test_database.py: PostgreSQL plans and restarts, transactions, migrations
- test_browser.py and test_accessibility.py: Chromium on a live server
- test_structure.py: the import direction and the size of modules

Fixtures are in conftest.py; helpers, shared with the benchmarks, in
app/testing/. `make test` runs this file and tests/.
"""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app import db, timeline
from app.models import Post, User
from app.testing.data import NEW_PASSWORD, ON_POSTGRES, SCRYPT, add_posts, make_user


def test_password_hashing(make_app):
    app = make_app(**SCRYPT)
    with app.app_context():
        u = User(username='susan', email='susan@example.com')
        u.set_password('cat-and-dog-123')
        assert not u.check_password('dog-and-cat-123')
        assert u.check_password('cat-and-dog-123')
        assert 'cat' not in u.password_hash
        assert u.password_hash.startswith('scrypt:')


def test_password_is_unicode_normalized(make_app):
    app = make_app(**SCRYPT)
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
        assert url.startswith(f'/avatar/{u.avatar_seed}?')
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


def test_reset_compare_and_set_refuses_a_stale_hash(app):
    with app.app_context():
        user = make_user()
        stale = user.password_hash
        assert user.replace_password(stale, NEW_PASSWORD)
        db.session.commit()
        assert not user.replace_password(stale, 'another passphrase here')
