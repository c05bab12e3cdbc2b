"""The extension objects, created unbound; `create_app` binds them."""

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, has_request_context, request
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect


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
    """On PostgreSQL a GET or HEAD request reads without a transaction
    (autocommit), saving the BEGIN and ROLLBACK round trips around a page.
    From its first write on (the last-seen touch, or a bug), the session
    uses a transaction as every other request does: the write is undone if
    the request fails, and later reads see it."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        bind = super().get_bind(mapper, clause, bind, **kwargs)
        if not (
            isinstance(bind, sa.Engine)
            and bind.dialect.name == 'postgresql'
            and has_request_context()
            and request.method in READ_METHODS
        ):
            return bind
        if self._flushing or isinstance(clause, sa.UpdateBase):
            self.info['wrote'] = True
        if self.info.get('wrote'):
            return bind
        # Per app, as its engines are: the same pool, another setting.
        readers = current_app.extensions.setdefault('autocommit_engines', {})
        if bind not in readers:
            readers[bind] = bind.execution_options(isolation_level='AUTOCOMMIT')
        return readers[bind]


db = SQLAlchemy(model_class=Base, session_options={'class_': Session})
migrate = Migrate()
login = LoginManager()
login.login_view = 'auth.login'
login.login_message = 'Please log in to access this page.'
login.session_protection = 'basic'
mail = Mail()
bootstrap = Bootstrap5()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
