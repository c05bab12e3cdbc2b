"""The application factory: a short list of steps, no side effects.

Nothing here starts a thread or touches the database: the mail sender
starts where the operator chooses (see app.outbox).
"""

from flask import Flask

from app import (
    database,
    health,
    i18n,
    links,
    outbox,
    security,
    sessions,
    translate,
    urls,
)
from app.account import bp as account_bp
from app.auth import bp as auth_bp
from app.cards import cards_html
from app.cli import bp as cli_bp
from app.email import public_url
from app.errors import bp as errors_bp
from app.extensions import bootstrap, csrf, db, limiter, login, mail, migrate
from app.logs import configure_logging
from app.main import bp as main_bp
from app.mfa import bp as mfa_bp
from app.passkeys import bp as passkeys_bp
from app.startup import (
    ConfigError,
    check_config,
    configure_limit_store,
    configure_proxies,
)
from config import Config

__all__ = ['ConfigError', 'create_app', 'db', 'mail']


def create_app(config_class: type = Config) -> Flask:
    """Build the app; refuse to start when production settings are unsafe."""
    app = Flask(__name__)
    app.config.from_object(config_class)
    check_config(app, config_class)
    health.init_app(app)  # inside ProxyFix: sees the host it settles on
    configure_proxies(app)
    register_extensions(app)
    register_blueprints(app)
    register_template_helpers(app)
    configure_logging(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    login.init_app(app)
    mail.init_app(app)
    bootstrap.init_app(app)
    csrf.init_app(app)
    i18n.init_app(app)
    configure_limit_store(app)
    limiter.init_app(app)
    database.init_app(app)
    security.init_app(app)
    outbox.init_app(app)
    sessions.init_app(app)
    links.init_app(app)


def register_template_helpers(app: Flask) -> None:
    """What every template may use without an import: the form macros and
    the passkey button's are imported once here (an import per render cost
    about 13 µs a page; an edit to them needs a restart, even with
    TEMPLATES_AUTO_RELOAD)."""
    app.add_template_global(public_url)
    app.add_template_global(cards_html)
    forms = app.jinja_env.get_template('_form.html').module
    app.add_template_global(forms.render_field, 'render_field')
    app.add_template_global(forms.render_form, 'render_form')
    passkeys = app.jinja_env.get_template('passkeys/_ask.html').module
    app.add_template_global(passkeys.passkey_form, 'passkey_form')
    urls.init_app(app)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(errors_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(mfa_bp)
    app.register_blueprint(passkeys_bp)
    app.register_blueprint(cli_bp)
    app.register_blueprint(translate.bp)
