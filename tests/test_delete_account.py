"""Deleting an account (issue 26 points 2 and 3): gone from every page at
once, restorable from an emailed link for the grace period, then purged
so that nothing of it remains in any table."""

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app import db, deletion
from app.dbtypes import utcnow
from app.email_undo import EmailUndo
from app.mfa.models import Authenticator, RecoveryCode
from app.models import User
from app.notices import queue_notice
from app.outbox import OutboxMessage, upkeep
from app.security_log import SecurityEvent
from app.sessions import UserSession
from app.testing import PASSWORD, AuthActions
from app.testing.data import add_posts, make_user
from app.testing.links import use_link

WINDOW = {'REAUTH_WINDOW': 600}
NAME, EMAIL = 'leaving_lena', 'lena@leaving.example'
RESTORE_LINK = re.compile(r'https://microblog\.test(/restore_account/[\w.-]+)')


@pytest.fixture
def world(make_app):
    """Lena (posts, follows both ways) signed in twice; John follows her."""
    app = make_app(**WINDOW)
    with app.app_context():
        lena, john = make_user(NAME, EMAIL), make_user('john')
        add_posts(lena, 3)
        add_posts(john, 2)
        lena.follow(john)
        john.follow(lena)
        db.session.commit()
    lena_here, lena_there, john = (app.test_client() for _ in range(3))
    for client, name in ((lena_here, NAME), (lena_there, NAME), (john, 'john')):
        assert AuthActions(client).login(name).status_code == 302
    return app, lena_here, lena_there, john


def delete(client, confirm=NAME):
    return client.post('/delete_account', data={'confirm': confirm})


def lena_id(app) -> int:
    with app.app_context():
        return User.by_username(NAME).id


def test_deleting_needs_a_recent_proof_and_the_typed_username(world):
    app, lena, _, _ = world
    page = lena.get('/delete_account')
    assert page.status_code == 200 and b'14 days' in page.data
    assert b'name="confirm"' in page.data
    wrong = delete(lena, 'john')
    assert wrong.status_code == 200 and b'exactly as shown' in wrong.data
    assert delete(lena, '').status_code == 200
    with app.app_context():
        db.session.execute(
            sa.update(UserSession).values(proven_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
    stale = delete(lena)
    assert stale.status_code == 302 and '/reauthenticate' in stale.location
    with app.app_context():
        assert User.by_username(NAME).deleted_at is None


def test_deleting_hides_everything_at_once(world, smtp):
    app, lena, lena_elsewhere, john = world
    response = delete(lena)
    assert response.status_code == 302 and response.location == '/login'
    # Every session signed out, on the server.
    for client in (lena, lena_elsewhere):
        assert client.get('/index').status_code == 302
    assert john.get(f'/user/{NAME}').status_code == 404
    for page in ('/index', '/explore', '/user/john'):
        assert b'leaving_lena post' not in john.get(page).data, page
    assert b'john post' in john.get('/explore').data
    profile = john.get('/user/john').get_data(as_text=True)
    assert re.search(r'0\s*followers', profile) and re.search(r'0\s*following', profile)
    follow = john.post(f'/follow/{NAME}', follow_redirects=True)
    assert b'not found' in follow.data
    # Signing in says what happened and how to undo it.
    answer = AuthActions(app.test_client()).login(NAME)
    assert answer.status_code == 302 and answer.location == '/deletion_scheduled'
    wrong = AuthActions(app.test_client()).login(NAME, password='not it')
    assert b'Invalid username or password' in wrong.data


def test_the_emailed_link_restores_everything(world, smtp):
    app, lena, _, john = world
    delete(lena)
    message = smtp.take('scheduled for deletion', EMAIL)
    text = message.get_body(('plain',)).get_content()
    path = RESTORE_LINK.search(text)[1]
    client = app.test_client()
    page = client.get(path, follow_redirects=True)
    assert b'Restore your account' in page.data
    restored = use_link(client, path)
    assert restored.status_code == 302
    assert john.get(f'/user/{NAME}').status_code == 200
    assert b'leaving_lena post 2' in john.get('/index').data
    assert b'1 follower' in john.get('/user/john').data
    assert AuthActions(client).login(NAME).location == '/index'
    log = client.get('/security_log').get_data(as_text=True)
    assert 'Account deletion cancelled' in log and 'Account deletion scheduled' in log
    # Used: the same link does nothing more.
    again = app.test_client()
    again.get(path)
    refused = again.post('/restore_account/confirm')
    assert refused.status_code == 302 and refused.location == '/login'


def test_sign_in_sends_the_link_again_until_the_grace_period_ends(world, smtp):
    app, lena, _, _ = world
    delete(lena)
    smtp.take('scheduled for deletion', EMAIL)
    client = app.test_client()
    AuthActions(client).login(NAME)
    page = client.get('/deletion_scheduled')
    assert EMAIL.encode() in page.data and b'removed for good' in page.data
    client.post('/deletion_scheduled')
    path = RESTORE_LINK.search(
        smtp.take('scheduled for deletion', EMAIL).get_body(('plain',)).get_content()
    )[1]
    with app.app_context():
        user = User.by_username(NAME)
        user.deleted_at = utcnow() - timedelta(days=14, minutes=1)
        db.session.commit()
    late = app.test_client()
    late.get(path)
    assert late.post('/restore_account/confirm').location == '/login'
    with app.app_context():
        assert User.by_username(NAME).deleted_at is not None


def every_row(app) -> dict[str, list[dict]]:
    with app.app_context():
        return {
            table.name: [
                dict(row._mapping) for row in db.session.execute(table.select()).all()
            ]
            for table in db.metadata.sorted_tables
        }


def user_columns() -> list[tuple[str, str]]:
    """(table, column) of every column that refers to an account."""
    pairs = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table.name == 'user' for fk in column.foreign_keys):
                pairs.append((table.name, column.name))
    return pairs


def furnish(app, lena: AuthActions) -> None:
    """Give Lena a second factor, recovery codes, a renamed name held for
    her, and mail to another address, so the purge has every kind of row."""
    lena.client.post('/edit_profile', data={'username': 'lena_renamed'})
    lena.client.post('/edit_profile', data={'username': NAME})
    new = lena.client.post('/change_email', data={'email': 'lena.new@example.com'})
    assert new.status_code == 302  # a confirmation queued to another address
    with app.app_context():
        user = User.by_username(NAME)
        sealed = Authenticator.new_secret(user)
        code = Authenticator.open_sealed(user, sealed).now()
        assert Authenticator.turn_on(user, sealed, code)
        RecoveryCode.replace_all(user)
        db.session.commit()


def test_the_purge_leaves_nothing_of_the_account(world, smtp):
    app, lena, _, john = world
    furnish(app, AuthActions(lena))
    gone = lena_id(app)
    delete(lena)
    with app.app_context():
        db.session.execute(
            sa.update(User).values(deleted_at=utcnow() - timedelta(days=15))
            .where(User.id == gone)
        )  # fmt: skip
        db.session.commit()
    result = app.test_cli_runner().invoke(args=['account', 'purge'])
    assert result.exit_code == 0 and '1 account(s) purged' in result.output
    rows = every_row(app)
    for table, column in user_columns():
        assert all(row[column] != gone for row in rows[table]), (table, column)
    for table, table_rows in rows.items():
        text = repr(table_rows).casefold()
        assert NAME not in text and EMAIL not in text and 'lena' not in text, table
    assert [e['event'] for e in rows['security_event'] if e['user_id'] is None] == [
        'account_deleted'
    ]
    assert len(rows['post']) == 2  # John's
    # The username and the address are free again.
    again = AuthActions(app.test_client(), smtp)
    again.register(NAME, EMAIL)
    assert again.login(NAME).status_code == 302


def test_the_purge_waits_for_the_grace_period_and_prunes_old_events(world):
    app, lena, _, _ = world
    delete(lena)
    with app.app_context():
        user = User.by_username(NAME)
        user.deleted_at = utcnow() - timedelta(days=13)
        john = User.by_username('john')
        old = SecurityEvent(user_id=john.id, event='login')
        old.created_at = utcnow() - timedelta(days=91)
        db.session.add(old)
        db.session.commit()
        old_id = old.id
        assert deletion.purge() == 0
        assert User.by_username(NAME) is not None
        assert db.session.get(SecurityEvent, old_id) is None
        assert db.session.scalar(
            sa.select(sa.func.count()).where(SecurityEvent.user_id == john.id)
        )  # john's recent sign-in stays


def test_the_mail_worker_runs_the_purge(world):
    app, lena, _, _ = world
    delete(lena)
    with app.app_context():
        user = User.by_username(NAME)
        user.deleted_at = utcnow() - timedelta(days=15)
        db.session.commit()
        assert deletion.purge_in_upkeep in upkeep._tasks
    sender = app.extensions['outbox']
    sender._last_upkeep = float('-inf')  # as at its start: upkeep is due
    with app.app_context():
        sender.run_once()
        assert User.by_username(NAME) is None


def test_a_wrong_password_does_not_say_the_account_is_deleted(world):
    app, lena, _, _ = world
    delete(lena)
    stranger = AuthActions(app.test_client())
    response = stranger.login(NAME, password=PASSWORD + 'x')
    assert response.status_code == 200 and b'scheduled' not in response.data


def test_posts_come_back_even_if_their_ids_were_taken(make_app):
    """SQLite gives a new post the highest id plus one, which may be the id
    of a held post: that one comes back under a new id."""
    app = make_app()
    with app.app_context():
        john, lena = make_user('john'), make_user(NAME, EMAIL)
        add_posts(john, 2)
        add_posts(lena, 3)
        deletion.schedule(lena)
        db.session.commit()
        add_posts(john, 1, start=utcnow())
        deletion.restore(lena)
        db.session.commit()
        bodies = db.session.scalars(sa.text('SELECT body FROM post')).all()
        assert len(bodies) == 6  # three of Lena's, three of John's
        held = db.session.scalar(sa.text('SELECT count(*) FROM held_post'))
    assert set(bodies) == {f'{NAME} post {i}' for i in range(3)} | {
        'john post 0',
        'john post 1',
    }
    assert held == 0


def test_a_follow_between_two_deleted_accounts_waits_for_both(world):
    app, lena, _, john = world
    delete(lena)
    delete(john, 'john')
    with app.app_context():
        users = {u.username: u for u in db.session.scalars(sa.select(User))}
        deletion.restore(users[NAME])
        db.session.commit()
        assert users[NAME].followers_count() == 0
        deletion.restore(users['john'])
        db.session.commit()
        assert users[NAME].followers_count() == 1
        assert users[NAME].following_count() == 1


def test_one_restore_link_pressed_twice_at_once_restores_once(world, smtp):
    app, lena, _, _ = world
    delete(lena)
    text = smtp.take('scheduled for deletion', EMAIL).get_body(('plain',)).get_content()
    path = RESTORE_LINK.search(text)[1]
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        assert client.get(path).location == '/restore_account/confirm'
    barrier, statuses = threading.Barrier(2), []

    def press(client):
        barrier.wait()
        statuses.append(client.post('/restore_account/confirm').status_code)

    threads = [threading.Thread(target=press, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [302, 302]
    with app.app_context():
        user_id = User.by_username(NAME).id
        events = db.session.scalars(
            sa.select(SecurityEvent.event).where(SecurityEvent.user_id == user_id)
        ).all()
        posts = db.session.scalar(
            sa.text('SELECT count(*) FROM post WHERE user_id = :u'), {'u': user_id}
        )
    assert events.count('deletion_cancelled') == 1 and posts == 3


def test_two_purges_at_once_remove_the_account_once(world):
    """The mail worker runs the purge in every process that sends mail."""
    app, lena, _, _ = world
    delete(lena)
    with app.app_context():
        user = User.by_username(NAME)
        user.deleted_at = utcnow() - timedelta(days=15)
        db.session.commit()
    barrier, removed = threading.Barrier(2), []

    def purge():
        with app.app_context():
            barrier.wait()
            removed.append(deletion.purge())

    threads = [threading.Thread(target=purge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(removed) == [0, 1]
    with app.app_context():
        lines = db.session.scalars(
            sa.select(SecurityEvent.event).where(SecurityEvent.user_id.is_(None))
        ).all()
    assert lines == ['account_deleted']


def test_the_purge_covers_every_table_that_names_an_account():
    """A table added later with a foreign key to `user` and not erased
    would make the purge fail for every account that has a row in it."""
    erased = set(deletion.BY_USER)
    erased |= {t.name for t in deletion.FOLLOW_TABLES} | {'security_event'}
    assert {table for table, _ in user_columns()} == erased


def test_one_account_that_cannot_be_purged_stops_no_other(world, monkeypatch):
    app, lena, _, john = world
    delete(lena)
    delete(john, 'john')
    with app.app_context():
        lena_user = User.by_username(NAME)
        db.session.add(  # an email change she once made
            EmailUndo(user_id=lena_user.id, old_email='lena.old@example.com',
                      new_email=EMAIL, expires_at=utcnow())
        )  # fmt: skip
        db.session.execute(
            sa.update(User).values(deleted_at=utcnow() - timedelta(days=15))
        )
        old = SecurityEvent(user_id=None, event='account_deleted')
        old.created_at = utcnow() - timedelta(days=91)
        db.session.add(old)
        db.session.commit()
        old_id, ids = old.id, deletion.due()
    erase = deletion.erase

    def failing_first(user_id):
        if user_id == ids[0]:
            raise sa.exc.OperationalError('DELETE', {}, Exception('lost'))
        return erase(user_id)

    monkeypatch.setattr(deletion, 'erase', failing_first)
    with app.app_context():
        assert deletion.purge() == 1  # the second account, the prune ran
        assert db.session.get(SecurityEvent, old_id) is None
        assert deletion.due() == ids[:1]
    monkeypatch.setattr(deletion, 'erase', erase)
    with app.app_context():
        assert deletion.purge() == 1  # next time, the first one too
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(EmailUndo.id))) == 0


def test_links_and_mail_about_a_deleted_account_do_nothing(make_app, smtp):
    """Links made before the deletion; mail asked for after it: only the
    restore link still works, and only the restore mail goes."""
    app = make_app(MAIL_SENDER_ENABLED=False, RESET_EMAIL_INTERVAL=0, **WINDOW)
    with app.app_context():
        make_user(NAME, EMAIL)
    lena = app.test_client()
    AuthActions(lena).login(NAME)
    new = 'lena.new@example.com'
    assert lena.post('/change_email', data={'email': new}).status_code == 302
    with app.app_context():
        user = User.by_username(NAME)
        made = {p: user.make_token(p, 3600, undo=1) for p in ('revert_email',
                'keep_email')}  # fmt: skip
        made |= {p: user.make_token(p, 3600) for p in ('not_me', 'reset_password')}
        change = user.make_token('change_email', 3600, email=new)
    delete(lena)
    stranger = app.test_client()
    stranger.post('/reset_password_request', data={'email': EMAIL})
    with app.app_context():
        user = User.by_username(NAME)
        queue_notice(user, 'password_changed')
        db.session.commit()
        for purpose, token in made.items():
            assert User.from_token(token, purpose)[:2] == (None, 'invalid'), purpose
        restore = user.make_token(deletion.PURPOSE, 3600)
        assert User.from_token(restore, deletion.PURPOSE)[0] == user
        app.extensions['outbox'].run_once()
        statuses = dict(db.session.execute(
            sa.select(OutboxMessage.kind, OutboxMessage.status)
        ).all())  # fmt: skip
    assert statuses.pop(deletion.RESTORE) == 'sent'
    assert set(statuses.values()) == {'dropped'}, statuses
    assert [m['Subject'] for m in smtp.wait_for(1)] == [
        '[Microblog] Your account is scheduled for deletion'
    ]
    use_link(stranger, f'/confirm_email/{change}')
    with app.app_context():
        user = User.by_username(NAME)
        assert user.email == EMAIL and user.deleted_at is not None


def test_the_next_sign_in_in_the_browser_forgets_the_deleted_account(world, smtp):
    app, lena, _, _ = world
    delete(lena)
    assert AuthActions(lena).login(NAME).location == '/deletion_scheduled'
    assert AuthActions(lena).login('john').location == '/index'
    assert lena.get('/deletion_scheduled').location == '/login'


def test_the_restore_mail_is_outside_the_mail_budget(make_app):
    """Deleting needs a recent proof; its page says a link was sent."""
    app = make_app(RATELIMIT_ENABLED=True, MAIL_BUDGET='3/hour')
    with app.app_context(), app.test_request_context():
        user = make_user(NAME, EMAIL)
        queued = [deletion.queue_restore_link(user) for _ in range(4)]
    assert None not in queued


def test_a_restore_ends_any_session_still_live(world):
    app, lena, _, _ = world
    delete(lena)
    with app.app_context():
        user = User.by_username(NAME)
        db.session.add(UserSession(user_id=user.id, token_hash='x' * 64))
        db.session.commit()
        deletion.restore(user)
        db.session.commit()
        live = sa.select(sa.func.count()).where(
            UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
        )
        assert db.session.scalar(live) == 0
