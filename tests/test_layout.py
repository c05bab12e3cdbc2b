"""The shape of the code: which room may import which, one way to build a
fixed URL in templates, and the names the code relies on."""

import ast
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app import create_app, timeline, urls
from app.dbtypes import utcnow
from app.extensions import db
from app.models import Post, User
from app.sessions import UserSession
from app.testing import AuthActions
from config import TestConfig

APP = Path(__file__).resolve().parent.parent / 'app'
TEMPLATES = APP / 'templates'
# The blueprints and the features built on them; the engine and the generic
# email module must know none of them.
FEATURES = {'auth', 'account', 'main', 'errors', 'notices', 'cli'}
BLUEPRINTS = {'auth', 'account', 'main', 'errors'}
ON_POSTGRES = os.environ.get('TEST_DATABASE_URL', '').startswith('postgres')


def room(module: str) -> str | None:
    """'app.auth.email' -> 'auth'; None for the package itself (the factory,
    which wires every room together) and for anything outside app."""
    parts = module.split('.')
    if parts[0] != 'app' or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported_modules(path: Path) -> set[str]:
    """Every app module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: resolve against this module's package
                package = module_name(path).split('.')
                if path.name != '__init__.py':
                    package = package[:-1]
                package = package[: len(package) - node.level + 1]
                base = '.'.join(package + ([base] if base else []))
            found.add(base)
            # `from app import sessions`: the module app.sessions
            found.update(
                f'{base}.{alias.name}'
                for alias in node.names
                if (APP.parent / base.replace('.', '/') / alias.name).exists()
                or (APP.parent / base.replace('.', '/') / f'{alias.name}.py').exists()
            )
    return {m for m in found if m == 'app' or m.startswith('app.')}


def room_graph() -> dict[str, set[str]]:
    """room -> the other rooms its modules import (app/testing, used only by
    tests and benchmarks, left out)."""
    graph: dict[str, set[str]] = {}
    for path in APP.rglob('*.py'):
        source = room(module_name(path))
        if source is None or source == 'testing':
            continue
        targets = {room(m) for m in imported_modules(path)}
        graph.setdefault(source, set()).update(targets - {None, source})
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_room_graph_is_read_from_the_code():
    graph = room_graph()
    assert {'auth', 'account', 'main', 'outbox', 'email'} <= graph.keys()
    assert 'auth' in graph['account']  # account's forms build on auth's
    assert 'outbox' in graph['email']


def test_auth_imports_nothing_from_account():
    """Sign-up and sign-in stand alone: account builds on auth, never the
    reverse, not even through another module."""
    assert 'account' not in reachable(room_graph(), 'auth')


@pytest.mark.parametrize('engine', ['outbox', 'email'])
def test_the_mail_engine_and_send_email_know_no_feature(engine):
    """Features register what they need done at send time; the engine and
    app/email.py import none of them, directly or not."""
    assert reachable(room_graph(), engine) & FEATURES == set()


def test_no_blueprint_imports_itself_through_another():
    """No loop through main, account or any blueprint: each can be read,
    and changed, after the rooms it builds on."""
    graph = room_graph()
    looped = {b for b in BLUEPRINTS if b in reachable(graph, b)}
    assert looped == set()


def test_templates_build_fixed_urls_one_way():
    """A URL without arguments comes from `fixed_url` (built once per
    process), never from url_for; nor is the helper bound by hand."""
    argument_less = re.compile(r"url_for\(\s*(['\"])[\w.]+\1\s*\)")
    for path in TEMPLATES.rglob('*.html'):
        text = path.read_text()
        assert not argument_less.search(text), path.name
        assert 'fixed_urls()' not in text, path.name


def test_pages_get_fixed_url_from_the_context_processor(client):
    page = client.get('/login').get_data(as_text=True)
    assert 'href="/register"' in page  # login.html, once url_for
    assert 'href="/static/css/app.css"' in page  # base.html


def test_the_url_cache_keeps_a_bounded_number_of_script_roots(app):
    """The script root comes from the server's SCRIPT_NAME, which a client
    can choose on some servers: a thousand roots keep at most a few
    FixedUrls, and every page still links under its own root."""
    client = app.test_client()
    for i in range(3 * urls.MAX_SCRIPT_ROOTS):
        root = f'/root{i}'
        page = client.get(f'{root}/login', base_url=f'https://microblog.test{root}/')
        assert f'href="{root}/register"' in page.get_data(as_text=True)
    assert len(app.extensions['fixed_urls']) <= urls.MAX_SCRIPT_ROOTS
    page = client.get('/root0/login', base_url='https://microblog.test/root0/')
    assert 'href="/root0/register"' in page.get_data(as_text=True)


@pytest.mark.skipif(not ON_POSTGRES, reason='autocommit reads on PostgreSQL')
def test_a_get_that_writes_does_so_on_the_connection_it_reads_with(make_app):
    """A GET decides its read mode once: it reads in autocommit and, when it
    writes (the last-seen touch), begins a transaction on the same
    connection, never holding a second one; the write is kept, and the
    connection goes back to the pool in transactions again."""
    from psycopg.pq import TransactionStatus

    app = make_app(MAIL_SENDER_ENABLED=False)  # its thread takes connections
    client = app.test_client()
    AuthActions(client).register()
    AuthActions(client).login()
    with app.app_context():
        engine = db.engine
        long_ago = utcnow() - timedelta(days=1)
        db.session.execute(sa.update(User).values(last_seen=long_ago))
        db.session.execute(sa.update(UserSession).values(last_seen=long_ago))
        db.session.commit()
    held = []

    def checkout(*_args) -> None:
        held.append(engine.pool.checkedout())

    sa.event.listen(engine, 'checkout', checkout)
    try:
        assert client.get('/index').status_code == 200
    finally:
        sa.event.remove(engine, 'checkout', checkout)
    assert held and max(held) == 1  # never a second connection at once
    with app.app_context():
        assert db.session.scalar(sa.select(User.last_seen)) > long_ago
        assert db.session.scalar(sa.select(UserSession.last_seen)) > long_ago
        driver = db.session.connection().connection.driver_connection
        assert not driver.autocommit  # back in the pool in transactions
    with app.test_request_context('/index'):
        db.session.execute(sa.select(1))
        driver = db.session.connection().connection.driver_connection
        assert driver.info.transaction_status == TransactionStatus.IDLE
        db.session.execute(sa.update(User).values(about_me='written in a GET'))
        assert driver.info.transaction_status == TransactionStatus.INTRANS
        assert db.session.connection().connection.driver_connection is driver
        db.session.rollback()
        assert db.session.scalar(sa.select(User.about_me)) is None


def test_the_index_sqlite_is_told_to_walk_exists_after_the_migrations(
    make_app, tmp_path
):
    """The SQLite timeline names Post.TIMELINE_INDEX (INDEXED BY fails if it
    is missing): the migrations build it, on the columns the model says."""
    index = Post.TIMELINE_INDEX
    assert f'INDEXED BY {index.name}' in str(timeline._sqlite_page())
    app = make_app(MAIL_SENDER_ENABLED=False)
    if not ON_POSTGRES:  # Alembic's batch mode needs a file of its own
        url = f'sqlite:///{tmp_path}/migrated.db'
        settings = {'SQLALCHEMY_DATABASE_URI': url, 'MAIL_SENDER_ENABLED': False}
        app = create_app(type('C', (TestConfig,), settings))
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE IF EXISTS alembic_version'))
        upgrade()
        built = {
            i['name']: i['column_names']
            for i in sa.inspect(db.engine).get_indexes('post')
        }
        db.session.remove()
        downgrade(revision='base')
        with db.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE alembic_version'))
    assert built[index.name] == [c.name for c in index.columns]
