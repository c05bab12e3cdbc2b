"""The application factory: a short list of steps, no side effects.

Nothing here starts a thread or touches the database: the mail sender
starts where the operator chooses (see app.outbox).
"""

from flask import Flask

from app import database, links, outbox, security
from app.account import bp as account_bp
from app.auth import bp as auth_bp
from app.cards import cards_html
from app.cli import bp as cli_bp
from app.email import public_url
from app.errors import bp as errors_bp
from app.extensions import bootstrap, csrf, db, limiter, login, mail, migrate
from app.forms import field_html
from app.main import bp as main_bp
from app.mfa import bp as mfa_bp
from app.startup import ConfigError, check_config, configure_logging, configure_proxies
from app.urls import fixed_url, fixed_urls
from config import Config

__all__ = ['ConfigError', 'create_app', 'db', 'mail']


def create_app(config_class: type = Config) -> Flask:
    """Build the app; refuse to start when production settings are unsafe."""
    app = Flask(__name__)
    app.config.from_object(config_class)
    check_config(app, config_class)
    configure_proxies(app)
    register_extensions(app)
    register_blueprints(app)
    configure_logging(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    login.init_app(app)
    mail.init_app(app)
    bootstrap.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    database.init_app(app)
    security.init_app(app)
    outbox.init_app(app)
    app.add_template_global(public_url)
    app.add_template_global(fixed_url)
    app.add_template_global(fixed_urls)
    app.add_template_global(field_html)
    app.add_template_global(cards_html)
    links.init_app(
        app,
        {
            'auth.reset_password',
            'account.confirm_email',
            'account.revert_email',
            'account.restore_account',
        },
    )


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(errors_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(mfa_bp)
    app.register_blueprint(cli_bp)
