"""Start-up checks, proxy trust and logging: what `create_app` applies."""

import logging
import os
import sys
from logging.handlers import RotatingFileHandler, SMTPHandler

from flask import Flask

from config import TestConfig

WEAK_KEYS = {'you-will-never-guess', 'change-me', 'secret', 'dev'}


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message says how to fix."""


def check_config(app: Flask, config_class: type) -> None:
    """Refuse to start when production settings are unsafe.

    Only APP_ENV=development relaxes the checks; the test suite relaxes them
    by choosing TestConfig, a class, which no environment value can select.
    """
    env = app.config['APP_ENV']
    if env == 'development':
        return
    if env == 'testing' and issubclass(config_class, TestConfig):
        return
    if env not in ('development', 'production'):
        raise ConfigError(
            f'APP_ENV={env!r} is not known: set APP_ENV=production (the '
            'default) or APP_ENV=development for local work.'
        )
    check_secret_key(app.config.get('SECRET_KEY') or '')
    if not app.config.get('SERVER_NAME'):
        raise ConfigError(
            'SERVER_NAME is not set: it is the public host (e.g. '
            'microblog.example.com) used for the links in emails. Set it, and '
            'PREFERRED_URL_SCHEME=https, in the environment.'
        )
    if not app.config.get('TRUSTED_HOSTS'):
        host = app.config['SERVER_NAME'].split(':')[0]
        app.config['TRUSTED_HOSTS'] = [host]


def check_secret_key(key: str) -> None:
    if key in WEAK_KEYS or len(key.encode()) < 32 or len(set(key)) < 5:
        raise ConfigError(
            'SECRET_KEY is missing, a known default, shorter than 32 bytes or '
            'made of fewer than 5 different characters. Generate one with: '
            'python -c "import secrets; print(secrets.token_urlsafe(48))" and '
            'set it in the environment.'
        )


def configure_limit_store(app: Flask) -> None:
    """Connect and read timeouts on a shared limit store (Redis), so a store
    that accepts connections and never answers costs a request at most
    RATELIMIT_STORAGE_TIMEOUT (redis-py waits 5 s by default)."""
    if app.config['RATELIMIT_STORAGE_URI'].startswith('memory'):
        return
    timeout = app.config['RATELIMIT_STORAGE_TIMEOUT']
    options = app.config.setdefault('RATELIMIT_STORAGE_OPTIONS', {})
    options.setdefault('socket_connect_timeout', timeout)
    options.setdefault('socket_timeout', timeout)


def configure_proxies(app: Flask) -> None:
    hops = app.config.get('PROXY_FIX') or 0
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )


def _admin_mail_handler(app: Flask) -> logging.Handler:
    config = app.config
    auth = None
    if config['MAIL_USERNAME'] or config['MAIL_PASSWORD']:
        auth = (config['MAIL_USERNAME'], config['MAIL_PASSWORD'])
    handler = SMTPHandler(
        mailhost=(config['MAIL_SERVER'], config['MAIL_PORT']),
        fromaddr=config['MAIL_DEFAULT_SENDER'],
        toaddrs=config['ADMINS'],
        subject='Microblog Failure',
        credentials=auth,
        secure=() if config['MAIL_USE_TLS'] else None,
        timeout=5,
    )
    handler.setLevel(logging.ERROR)
    return handler


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of each record."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def configure_logging(app: Flask) -> None:
    """Errors to ADMINS by email and everything to a file or stdout (not in
    debug or testing). The logger is shared by every app in the process, so
    handlers a previous app added are replaced, not stacked."""
    app.logger.setLevel(logging.INFO)
    if app.debug or app.testing:
        return
    for old in [h for h in app.logger.handlers if getattr(h, 'microblog', False)]:
        app.logger.removeHandler(old)
        old.close()
    if app.config['MAIL_SERVER'] and app.config['ADMINS']:
        mailer = _admin_mail_handler(app)
        mailer.microblog = True
        app.logger.addHandler(mailer)
    if app.config['LOG_TO_STDOUT']:
        handler = StdoutHandler(sys.stdout)
    else:
        os.makedirs('logs', exist_ok=True)
        handler = RotatingFileHandler(
            'logs/microblog.log', maxBytes=1_000_000, backupCount=10
        )
    handler.setFormatter(
        logging.Formatter(
            '%(asctime)s %(levelname)s: %(message)s [in %(pathname)s:%(lineno)d]'
        )
    )
    handler.setLevel(logging.INFO)
    handler.microblog = True
    app.logger.addHandler(handler)
