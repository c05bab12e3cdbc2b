"""No account enumeration through any door (issue 21, point 7).

Each door is tried twice, once with a free and once with a taken address,
and the two answers are compared whole: status, redirect, body (with the
address and username swapped for placeholders), the cookies set (all but
their signed values) and the SQL the request sends. What differs goes to
the address's inbox, read from the SMTP sink.
"""

import difflib
import hashlib
import os
import re
import threading
from datetime import timedelta

import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app, db
from app.dbtypes import utcnow
from app.models import Post, User
from app.testing import PASSWORD, AuthActions
from config import Config, TestConfig


def make_account(username: str, email: str) -> User:
    user = User(username=username, email=email, email_confirmed=True)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


CSRF_TOKEN = re.compile(r'csrf_token" value="[^"]*"')


def cookie_shapes(response) -> list[tuple[str, str]]:
    """Each Set-Cookie as (name, attributes): everything but the value,
    which is signed and differs anyway."""
    shapes = []
    for header in response.headers.getlist('Set-Cookie'):
        pair, _, attributes = header.partition(';')
        shapes.append((pair.partition('=')[0], attributes.strip()))
    return sorted(shapes)


def answer(response, **placeholders) -> tuple:
    """What a requester sees: status, redirect, body and cookies, with each
    placeholder's value replaced by its name."""
    body = response.get_data(as_text=True)
    body = CSRF_TOKEN.sub('csrf_token" value="CSRF"', body)  # random per session
    for name, value in placeholders.items():
        body = body.replace(value, name)
    location = response.headers.get('Location')
    return response.status_code, location, body, cookie_shapes(response)


def assert_same(first: tuple, second: tuple) -> None:
    """Two answers are equal; if not, show where the bodies differ."""
    if first[2] != second[2]:
        diff = difflib.unified_diff(
            first[2].splitlines(), second[2].splitlines(), lineterm='', n=1
        )
        raise AssertionError('bodies differ:\n' + '\n'.join(diff))
    assert first == second


def recording(count_statements, app, call):
    """(response, the SQL statements the request sent)."""
    with count_statements(app) as counter:
        response = call()
    return response, counter.statements


def change_email(client, address: str):
    data = {'current_password': PASSWORD, 'email': address}
    return client.post('/change_email', data=data)


def signed_in(app, username: str):
    client = app.test_client()
    AuthActions(client).login(username)
    client.get('/settings')  # the sign-in's own writes are done
    return client


def test_change_email_to_a_taken_address_answers_as_to_a_free_one(
    app, smtp, count_statements
):
    with app.app_context():
        for name in ('susan', 'carol', 'owner'):
            make_account(name, f'{name}@example.com')
    susan, carol = signed_in(app, 'susan'), signed_in(app, 'carol')

    free, free_sql = recording(
        count_statements, app, lambda: change_email(susan, 'free@example.com')
    )
    taken, taken_sql = recording(
        count_statements, app, lambda: change_email(carol, 'OWNER@example.com')
    )
    assert_same(answer(free), answer(taken))
    assert free.status_code == 302
    assert free_sql == taken_sql
    free_page = answer(susan.get(free.location), ADDRESS='free@example.com', N='susan')
    taken_page = answer(
        carol.get(taken.location), ADDRESS='owner@example.com', N='carol'
    )
    assert_same(free_page, taken_page)
    assert 'We sent a link to ADDRESS.' in free_page[2]

    smtp.take('Confirm your new email address', 'free@example.com')
    notice = smtp.take('Someone tried to use your email address', 'owner@example.com')
    text = notice.get_body(('plain',)).get_content()
    assert 'nothing has changed' in text and '/confirm_email/' not in text
    assert not [m for m in smtp.messages if m['To'] == 'owner@example.com']
    with app.app_context():
        assert User.by_username('carol').email == 'carol@example.com'
        assert User.by_username('owner').email == 'owner@example.com'


def sign_up(app, username: str, email: str):
    client = app.test_client()
    data = {
        'username': username,
        'email': email,
        'password': PASSWORD,
        'password2': PASSWORD,
    }
    return client, lambda: client.post('/register', data=data)


def test_sign_up_and_sign_in_answer_the_same_for_a_taken_address(
    app, smtp, count_statements
):
    """A sign-up with a taken address, then a sign-in with its username and
    password, answer exactly as a fresh, unconfirmed sign-up does."""
    with app.app_context():
        make_account('owner', 'owner@example.com')
    fresh_client, fresh_post = sign_up(app, 'fresh', 'fresh@example.com')
    taken_client, taken_post = sign_up(app, 'taker', 'Owner@Example.com')
    fresh_subs = {'ADDRESS': 'fresh@example.com', 'NAME': 'fresh'}
    taken_subs = {'ADDRESS': 'owner@example.com', 'NAME': 'taker'}

    steps = [
        (fresh_post, taken_post),
        (
            lambda: AuthActions(fresh_client).login('fresh'),
            lambda: AuthActions(taken_client).login('taker'),
        ),
        (lambda: fresh_client.get('/login'), lambda: taken_client.get('/login')),
        (
            lambda: fresh_client.get('/signup/pending'),
            lambda: taken_client.get('/signup/pending'),
        ),
        (  # "send the link again"
            lambda: fresh_client.post('/signup/pending'),
            lambda: taken_client.post('/signup/pending'),
        ),
        (
            lambda: fresh_client.get('/signup/pending'),
            lambda: taken_client.get('/signup/pending'),
        ),
        (lambda: fresh_client.get('/index'), lambda: taken_client.get('/index')),
    ]
    seen, work = [], []
    for fresh_step, taken_step in steps:
        fresh, fresh_sql = recording(count_statements, app, fresh_step)
        taken, taken_sql = recording(count_statements, app, taken_step)
        assert_same(answer(fresh, **fresh_subs), answer(taken, **taken_subs))
        seen.append(answer(fresh, **fresh_subs))
        work.append((fresh_sql, taken_sql))
    for fresh_sql, taken_sql in work:
        assert fresh_sql == taken_sql
    assert seen[1][:2] == (302, '/signup/pending')  # the sign-in
    assert 'Confirm your address first' in seen[3][2]
    assert 'we sent to <strong>ADDRESS</strong>' in seen[3][2]
    assert 'We sent a new link to ADDRESS.' in seen[5][2]
    assert seen[6][:2] == (302, '/login?next=%2Findex')  # not signed in

    for _ in range(2):  # the sign-up and the resend
        smtp.take('Confirm your email address', 'fresh@example.com')
        notice = smtp.take('Someone tried to sign up', 'owner@example.com')
        assert '/confirm_email/' not in notice.get_body(('plain',)).get_content()
    assert not smtp.messages
    with app.app_context():
        assert db.session.scalars(sa.select(User.username)).all() == ['owner']


def confirm_link(message) -> str:
    text = message.get_body(('plain',)).get_content()
    return re.search(r'https?://[^\s"<]+(/confirm_email/[\w.-]+)', text)[1]


def use_link(client, path: str):
    landing = client.get(path)
    return client.post(landing.location)


def test_only_the_confirmed_sign_up_becomes_an_account(app, smtp):
    """The fresh sign-up's link creates the account; a taken address's
    sign-up has no link, and even a link made for it is refused."""
    from app.signups import PendingSignup  # here: the other tests run without it

    with app.app_context():
        make_account('owner', 'owner@example.com')
    client = app.test_client()
    auth = AuthActions(client)
    auth.register('fresh', 'fresh@example.com', confirm=False)
    auth.register('taker', 'owner@example.com', confirm=False)
    link = confirm_link(smtp.take('Confirm your email address', 'fresh@example.com'))
    smtp.take('Someone tried to sign up', 'owner@example.com')

    assert use_link(client, link).location == '/login'
    assert auth.login('fresh').location == '/index'
    auth.logout()
    with app.app_context():
        taker = PendingSignup.by_username('taker')
        forged = '/confirm_email/' + taker.make_token(3600)
    assert use_link(client, forged).location == '/index'  # refused
    assert 'already used' in client.get('/login').get_data(as_text=True)
    assert auth.login('taker').location == '/signup/pending'
    with app.app_context():
        names = db.session.scalars(sa.select(User.username).order_by(User.id))
        assert names.all() == ['owner', 'fresh']
        assert User.by_username('fresh').email_confirmed


def test_a_link_used_twice_at_once_makes_one_account(app, smtp):
    """Two browsers press "Confirm" with one link at the same instant: one
    account, and the other press is a refused link, not a 500."""
    AuthActions(app.test_client()).register('bob', 'bob@example.com', confirm=False)
    link = confirm_link(smtp.take('Confirm your email address', 'bob@example.com'))
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        assert client.get(link).location == '/confirm_email/confirm'
    barrier, locations = threading.Barrier(2), []

    def confirm(client):
        barrier.wait()
        locations.append(client.post('/confirm_email/confirm').location)

    threads = [threading.Thread(target=confirm, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(locations) == ['/index', '/login']
    with app.app_context():
        assert db.session.scalars(sa.select(User.username)).all() == ['bob']


def test_a_pending_sign_up_holds_its_username_until_it_expires(app, smtp):
    from app.signups import PendingSignup

    auth = AuthActions(app.test_client())
    auth.register('bob', 'bob@example.com', confirm=False)
    taken = auth.register('BOB', 'robert@example.com', confirm=False)
    assert b'Please use a different username.' in taken.data
    with app.app_context():
        make_account('susan', 'susan@example.com')
    susan = signed_in(app, 'susan')
    rename = susan.post('/edit_profile', data={'username': 'Bob', 'about_me': ''})
    assert b'Please use a different username.' in rename.data

    with app.app_context():
        pending = PendingSignup.by_username('bob')
        pending.expires = utcnow() - timedelta(seconds=1)
        db.session.commit()
    auth.client.delete_cookie('session')
    assert auth.login('bob').status_code == 200  # gone: an unknown name
    again = auth.register('bob', 'robert@example.com', confirm=False)
    assert again.location == '/login'
    with app.app_context():
        assert PendingSignup.by_username('bob').email == 'robert@example.com'
        rows = db.session.scalar(sa.select(sa.func.count(PendingSignup.id)))
        assert rows == 1  # the expired one was removed


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_avatars_reveal_no_hash_of_the_email_address(make_app):
    app = make_app(GRAVATAR=False)  # the default (TestConfig opts in)
    with app.app_context():
        users = [make_account(n, f'{n}@example.com') for n in ('susan', 'carol')]
        for user in users:
            db.session.add(Post(body=f'{user.username} says hi', author=user))
        db.session.commit()
        seeds = {u.username: getattr(u, 'avatar_seed', None) for u in users}
    client = signed_in(app, 'susan')
    client.post('/follow/carol')
    for path in ('/index', '/explore', '/user/carol', '/user/susan'):
        page = client.get(path).get_data(as_text=True)
        for name, seed in seeds.items():
            address = f'{name}@example.com'
            for digest in (md5(address), hashlib.sha256(address.encode()).hexdigest()):
                assert digest not in page
            if path != f'/user/{"carol" if name == "susan" else "susan"}':
                assert f'/avatar/{seed}?size=' in page
        assert 'gravatar' not in page
    assert (
        re.fullmatch(r'[0-9a-f]{32}', seeds['susan']) and len(set(seeds.values())) == 2
    )
    icon = client.get(f'/avatar/{seeds["carol"]}?size=70')
    assert icon.status_code == 200 and icon.mimetype == 'image/svg+xml'

    assert Config.GRAVATAR is False  # the default, unless the environment says

    # Opt-in Gravatar: the hash is in the page, as the README says.
    gravatar = signed_in(make_app(GRAVATAR=True), 'susan')
    assert md5('carol@example.com') in gravatar.get('/explore').get_data(as_text=True)


def empty_database_app(make_app, tmp_path):
    """An app on an empty database (Alembic's batch mode needs a real
    SQLite file, not the fixtures' in-memory one)."""
    app = make_app()
    if not os.environ.get('TEST_DATABASE_URL'):
        url = f'sqlite:///{tmp_path}/migrated.db'
        settings = {'SQLALCHEMY_DATABASE_URI': url, 'MAIL_SENDER_ENABLED': False}
        app = create_app(type('C', (TestConfig,), settings))
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE IF EXISTS alembic_version'))
    return app


def test_migration_gives_each_existing_account_its_own_random_seed(make_app, tmp_path):
    app = empty_database_app(make_app, tmp_path)
    with app.app_context():
        upgrade(revision='0005')
        with db.engine.begin() as conn:
            for i in range(1, 4):
                conn.execute(
                    sa.text(
                        'INSERT INTO "user" (id, username, username_key, email, '
                        'email_confirmed) VALUES (:i, :name, :name, :email, true)'
                    ),
                    {'i': i, 'name': f'u{i}', 'email': f'u{i}@example.com'},
                )
        upgrade()
        seeds = db.session.scalars(sa.select(User.avatar_seed)).all()
        assert len(set(seeds)) == 3
        assert all(re.fullmatch(r'[0-9a-f]{32}', seed) for seed in seeds)
        assert not {md5(f'u{i}@example.com') for i in range(1, 4)} & set(seeds)
        db.session.remove()
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE alembic_version'))
