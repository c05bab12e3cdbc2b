"""Engine settings: SQLite fit for a multi-process web server; PostgreSQL
connections checked before use without a round trip, with connect and
statement timeouts; Core rows as ORM objects."""

import functools
import select
from typing import TypeVar

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask
from werkzeug.routing import IntegerConverter

from app.extensions import db

SQLITE_MMAP_BYTES = 1 << 30
SQLITE_CACHE_KIB = 32 * 1024


class RowId(IntegerConverter):
    """`<id:name>` in a URL: a row id as every database can hold it (int4,
    1 to 2**31 - 1); anything else is a 404, not an overflow and a 500."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=2**31 - 1)


def init_app(app: Flask) -> None:
    app.url_map.converters['id'] = RowId  # before the blueprints' routes
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == 'postgresql':
        limit_waits(engine, app.config)
    if engine.dialect.name != 'sqlite':
        sa.event.listen(engine, 'checkout', _refuse_if_closed)
        sa.event.listen(engine, 'checkin', _end_autocommit)
        return
    busy_ms = int(app.config['SQLITE_BUSY_TIMEOUT_MS'])

    @sa.event.listens_for(engine, 'connect')
    def _sqlite_pragmas(dbapi_connection, _record):
        # pysqlite starts a transaction only right before the first write, so
        # a writer waits up to busy_timeout for the lock instead of failing.
        cursor = dbapi_connection.cursor()
        cursor.execute(f'PRAGMA busy_timeout = {busy_ms}')
        cursor.execute('PRAGMA foreign_keys = ON')
        if engine.url.database not in (None, '', ':memory:'):
            cursor.execute('PRAGMA journal_mode = WAL')
            cursor.execute('PRAGMA synchronous = NORMAL')
            # Read through the OS page cache without a copy per page, and
            # keep more pages per connection than SQLite's 2 MB default.
            cursor.execute(f'PRAGMA mmap_size = {SQLITE_MMAP_BYTES}')
            cursor.execute(f'PRAGMA cache_size = -{SQLITE_CACHE_KIB}')
        cursor.close()


def limit_waits(engine: sa.Engine, config) -> None:
    """A database that accepts connections and never answers, or a statement
    stuck behind a lock, cannot hang a request, a sender or a start: libpq
    gives up connecting after DATABASE_CONNECT_TIMEOUT seconds, and the
    server cancels a statement after DATABASE_STATEMENT_TIMEOUT ms. Both
    travel in the connection's start-up packet: no extra round trip."""
    connect = config['DATABASE_CONNECT_TIMEOUT']
    statement = config['DATABASE_STATEMENT_TIMEOUT']

    @sa.event.listens_for(engine, 'do_connect')
    def _timeouts(_dialect, _record, _cargs, cparams):
        if connect:
            cparams.setdefault('connect_timeout', connect)
        if statement:
            options = cparams.get('options', '')
            cparams['options'] = f'{options} -c statement_timeout={statement}'.strip()


def _refuse_if_closed(dbapi_connection, _record, _proxy) -> None:
    """A pooled connection the server has closed (restart, failover, idle
    timeout) is replaced before use: the pool retries on DisconnectionError."""
    if not is_open(dbapi_connection):
        raise sa.exc.DisconnectionError('connection closed by the server')


def _end_autocommit(dbapi_connection, _record) -> None:
    """A connection a GET request read with in autocommit (see
    app.extensions.Session) goes back to the pool in transactions again:
    the mail sender, the CLI and POST requests rely on them."""
    if dbapi_connection is not None and not getattr(dbapi_connection, 'closed', True):
        if getattr(dbapi_connection, 'autocommit', False):
            dbapi_connection.autocommit = False


def is_open(dbapi_connection) -> bool:
    """True unless the server has closed this idle connection. An idle
    connection expects nothing from the server, so a readable socket means
    it was closed (end of file, or a last error message); unlike a ping
    ("SELECT 1"), looking costs no round trip."""
    if getattr(dbapi_connection, 'closed', False):
        return False
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    return not poller.poll(0)


def commit_unless_conflict() -> bool:
    """Commit; on a unique-constraint violation (a concurrent request wrote
    the same name, email or follow first) roll back and return False."""
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        return False
    return True


Model = TypeVar('Model')


def attach(model: type[Model], row: sa.Row) -> Model:
    """The persistent object of this session a query would load, from a Core
    row holding `model`'s table columns (found by column, so the row may
    hold other columns too, in any order): on hot pages the ORM's loading
    cost twice the query. If the session already holds that object, that
    object. (make_transient_to_detached is SQLAlchemy's way to take in an
    object built from another source than a query.)"""
    mapper = sa.inspect(model)
    columns, primary = _layout(mapper)
    found = row._mapping
    values = {key: found[column] for key, column in columns}
    key = mapper.identity_key_from_primary_key([values[k] for k in primary])
    held = db.session.identity_map.get(key)
    if held is not None:
        return held
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(values)
    so.make_transient_to_detached(instance)
    db.session.add(instance)
    return instance


@functools.cache
def _layout(mapper: so.Mapper) -> tuple[tuple, tuple[str, ...]]:
    """(attribute name, column) for each of the mapper's table columns, then
    the attribute names of its primary key."""
    name = mapper.get_property_by_column
    columns = tuple((name(c).key, c) for c in mapper.local_table.c)
    return columns, tuple(name(c).key for c in mapper.primary_key)
