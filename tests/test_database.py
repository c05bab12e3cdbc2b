"""The database underneath: PostgreSQL plans, restarts and transactions,
dead connections, and the migrations."""

import os
import re
import socket
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app import create_app, database, db
from app.email import send_email
from app.models import Post, User
from app.outbox import OutboxMessage
from app.testing import AuthActions
from app.testing.data import ON_POSTGRES, add_posts, make_user
from config import TestConfig


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
    with app.test_request_context('/index'):  # a GET that queues mail
        db.session.execute(sa.select(1))
        queued = send_email('Hi', None, ['ghost@example.com'], 'Body')
        db.session.rollback()
        assert db.session.get(OutboxMessage, queued) is None  # undone with it
    with app.app_context():  # the mail sender, the CLI: transactions
        db.session.execute(sa.select(1))
        driver = db.session.connection().connection.driver_connection
        assert driver.info.transaction_status == TransactionStatus.INTRANS


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
