"""Application factory and the extensions it binds."""

import logging
import os
import sys
from logging.handlers import RotatingFileHandler, SMTPHandler

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from config import Config


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


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login = LoginManager()
login.login_view = 'auth.login'
login.login_message = 'Please log in to access this page.'
login.session_protection = 'basic'
mail = Mail()
bootstrap = Bootstrap5()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])

WEAK_KEYS = {'you-will-never-guess', 'change-me', 'secret', 'dev'}


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message says how to fix."""


def create_app(config_class: type = Config) -> Flask:
    """Build the app; refuse to start when production settings are unsafe."""
    app = Flask(__name__)
    app.config.from_object(config_class)
    check_config(app)
    configure_proxies(app)

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    login.init_app(app)
    mail.init_app(app)
    bootstrap.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    register_blueprints(app)
    configure_logging(app)

    from app import database, outbox, security
    from app.email import public_url

    app.add_template_global(public_url)

    database.init_app(app)
    security.init_app(app)
    outbox.init_app(app)
    return app


def check_config(app: Flask) -> None:
    env = app.config['APP_ENV']
    if env in ('development', 'testing'):
        return
    key = app.config.get('SECRET_KEY') or ''
    if key in WEAK_KEYS or len(key.encode()) < 32:
        raise ConfigError(
            'SECRET_KEY is missing, a known default or shorter than 32 bytes. '
            'Generate one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(48))" and set it in the environment.'
        )
    if not app.config.get('SERVER_NAME'):
        raise ConfigError(
            'SERVER_NAME is not set: it is the public host (e.g. '
            'microblog.example.com) used for the links in emails. Set it, and '
            'PREFERRED_URL_SCHEME=https, in the environment.'
        )
    if not app.config.get('TRUSTED_HOSTS'):
        host = app.config['SERVER_NAME'].split(':')[0]
        app.config['TRUSTED_HOSTS'] = [host]


def configure_proxies(app: Flask) -> None:
    hops = app.config.get('PROXY_FIX') or 0
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )


def register_blueprints(app: Flask) -> None:
    from app.auth import bp as auth_bp
    from app.cli import bp as cli_bp
    from app.errors import bp as errors_bp
    from app.main import bp as main_bp

    app.register_blueprint(errors_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(cli_bp)


def configure_logging(app: Flask) -> None:
    app.logger.setLevel(logging.INFO)
    if app.debug or app.testing:
        return
    if app.config['MAIL_SERVER'] and app.config['ADMINS']:
        auth = None
        if app.config['MAIL_USERNAME'] or app.config['MAIL_PASSWORD']:
            auth = (app.config['MAIL_USERNAME'], app.config['MAIL_PASSWORD'])
        secure = () if app.config['MAIL_USE_TLS'] else None
        mail_handler = SMTPHandler(
            mailhost=(app.config['MAIL_SERVER'], app.config['MAIL_PORT']),
            fromaddr=app.config['MAIL_DEFAULT_SENDER'],
            toaddrs=app.config['ADMINS'],
            subject='Microblog Failure',
            credentials=auth,
            secure=secure,
            timeout=5,
        )
        mail_handler.setLevel(logging.ERROR)
        app.logger.addHandler(mail_handler)
    fmt = logging.Formatter(
        '%(asctime)s %(levelname)s: %(message)s [in %(pathname)s:%(lineno)d]'
    )
    if app.config['LOG_TO_STDOUT']:
        handler = logging.StreamHandler(sys.stdout)
    else:
        os.makedirs('logs', exist_ok=True)
        handler = RotatingFileHandler(
            'logs/microblog.log', maxBytes=1_000_000, backupCount=10
        )
    handler.setFormatter(fmt)
    handler.setLevel(logging.INFO)
    app.logger.addHandler(handler)


from app import models  # noqa: E402, F401
