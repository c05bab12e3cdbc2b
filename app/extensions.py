"""The extension objects, created unbound; `create_app` binds them."""

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import has_request_context, request
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect

from app.i18n import lazy_gettext as _l


class Base(so.DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            'ix': 'ix_%(column_0_label)s',
            'uq': 'uq_%(table_name)s_%(column_0_name)s',
            'ck': 'ck_%(table_name)s_%(constraint_name)s',
            'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
            'pk': 'pk_%(table_name)s',
        }
    )


READ_METHODS = frozenset({'GET', 'HEAD'})


class Session(FlaskSession):
    """A request's session (one per request: Flask-SQLAlchemy scopes it to
    the app context). On PostgreSQL a GET or HEAD request reads without a
    transaction (autocommit), saving the BEGIN and ROLLBACK round trips
    around a page: decided once, when the request first uses the session.
    Its first write through the session (an ORM flush, or an UPDATE or
    INSERT given to `execute`: the last-seen touch, or a bug) starts a
    transaction on the same connection, as every other request has: the
    write is undone if the request fails, and later reads see it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reading = has_request_context() and request.method in READ_METHODS

    def start_writing(self) -> None:
        """Leave autocommit: the connection in hand, if any, runs its next
        statement in a transaction (BEGIN is sent with it)."""
        if not self.reading:
            return
        self.reading = False
        if self.in_transaction():
            _set_autocommit(self.connection(), False)


def _set_autocommit(connection: sa.Connection, on: bool) -> None:
    # Between statements in autocommit the connection is idle, which is
    # when the driver lets the setting change (psycopg's `autocommit`).
    # app.database.init_app turns it off again when the pool takes the
    # connection back.
    if connection.dialect.name == 'postgresql':
        connection.connection.driver_connection.autocommit = on


@sa.event.listens_for(Session, 'after_begin')
def _read_without_transaction(session, _transaction, connection) -> None:
    if session.reading:
        _set_autocommit(connection, True)


@sa.event.listens_for(Session, 'before_flush')
def _flush_writes(session, _context, _instances) -> None:
    session.start_writing()


@sa.event.listens_for(Session, 'do_orm_execute')
def _execute_writes(state: so.ORMExecuteState) -> None:
    if not state.is_select:
        state.session.start_writing()


db = SQLAlchemy(model_class=Base, session_options={'class_': Session})
migrate = Migrate()
login = LoginManager()
login.login_view = 'auth.login'
login.login_message = _l('Please log in to access this page.')
login.session_protection = 'basic'
mail = Mail()
bootstrap = Bootstrap5()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
