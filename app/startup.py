"""Start-up checks and proxy trust: what `create_app` applies first.

A mistake raises ConfigError with one sentence naming the variable and
the fix; `flask` commands and gunicorn print it as one line and exit 1.
"""

import ipaddress
import os
import sys
from typing import NoReturn
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from flask import Flask

from config import TestConfig

WEAK_KEYS = {'you-will-never-guess', 'change-me', 'secret', 'dev'}


LOOPBACK_NAMES = {'localhost', 'localhost.localdomain', 'ip6-localhost'}
RATELIMIT_SCHEMES = {'memory', 'redis', 'rediss', 'redis+unix', 'redis+sentinel'}
DATABASE_HELP = (
    'use sqlite:///path/to/app.db or '
    'postgresql+psycopg://user:password@host:5432/microblog'
)


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message says how to fix."""


def check_config(app: Flask, config_class: type) -> None:
    """Refuse to start when a setting is unreadable, or production unsafe.

    Only APP_ENV=development relaxes the production checks; the test suite
    relaxes them by choosing TestConfig, a class, which no environment value
    can select.
    """
    config = app.config
    env = config['APP_ENV']
    testing = env == 'testing' and issubclass(config_class, TestConfig)
    if env not in ('development', 'production') and not testing:
        raise ConfigError(
            f'APP_ENV={env!r} is not known: set APP_ENV=production (the '
            'default) or APP_ENV=development for local work.'
        )
    check_settings(config)
    if env != 'production':
        return
    check_secret_key(config.get('SECRET_KEY') or '')
    check_public_address(config)
    if not config.get('TRUSTED_HOSTS'):
        config['TRUSTED_HOSTS'] = [hostname(config['SERVER_NAME'])]


def check_settings(config) -> None:
    """Checks for every environment: values that cannot work anywhere."""
    problems = config.get('CONFIG_PROBLEMS') or ()
    if problems:
        raise ConfigError(problems[0])
    if config['PREFERRED_URL_SCHEME'] not in ('http', 'https'):
        raise ConfigError(
            f'PREFERRED_URL_SCHEME={config["PREFERRED_URL_SCHEME"]!r} is not '
            'a scheme for links: set https (production) or http.'
        )
    if config['MAIL_USE_TLS'] and config['MAIL_USE_SSL']:
        raise ConfigError(
            'MAIL_USE_TLS and MAIL_USE_SSL are both on: set MAIL_USE_TLS=true '
            'for STARTTLS (usually port 587) or MAIL_USE_SSL=true for implicit '
            'TLS (usually port 465), not both.'
        )
    name = config.get('SERVER_NAME') or ''
    if '/' in name or ' ' in name:
        raise ConfigError(
            f'SERVER_NAME={name!r} is not a host name: write the host alone, '
            'with an optional :port (e.g. microblog.example.com), and the '
            'scheme in PREFERRED_URL_SCHEME.'
        )
    if not 0 < config['MAIL_PORT'] < 65536:
        raise ConfigError(f'MAIL_PORT={config["MAIL_PORT"]} is not a port number.')
    check_database_url(config['SQLALCHEMY_DATABASE_URI'])
    check_ratelimit_store(config.get('RATELIMIT_STORAGE_URI') or 'memory://')


def check_database_url(url: str) -> None:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(
            f'DATABASE_URL is not a database URL: {DATABASE_HELP}.'
        ) from None
    scheme = parsed.drivername
    if scheme in ('postgres', 'postgresql', 'postgresql+psycopg2'):
        raise ConfigError(
            f'DATABASE_URL starts with {scheme}://, which this app cannot use: '
            'write postgresql+psycopg:// instead (psycopg 3 is installed).'
        )
    if scheme == 'sqlite':
        check_sqlite_path(parsed.database)
    elif scheme != 'postgresql+psycopg':
        raise ConfigError(
            f'DATABASE_URL uses {scheme}://, which this app does not support: '
            f'{DATABASE_HELP}.'
        )


def check_sqlite_path(path: str | None) -> None:
    """The file, and its folder (SQLite writes its journal beside it), must
    be writable by this user."""
    if not path or path == ':memory:' or path.startswith('file:'):
        return
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        problem = f'the folder {folder} does not exist'
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f'this user cannot write in {folder}'
    elif os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        problem = f'this user cannot write {path}'
    else:
        return
    raise ConfigError(
        f'DATABASE_URL names the SQLite file {path}, but {problem}: create the '
        'folder or fix its permissions, or choose another path.'
    )


def check_ratelimit_store(uri: str) -> None:
    scheme = uri.partition('://')[0].lower() if '://' in uri else ''
    if scheme not in RATELIMIT_SCHEMES:
        raise ConfigError(
            f'RATELIMIT_STORAGE_URI={redact_url(uri)!r} is not a store this app '
            'can use: set memory:// (one process) or redis://host:6379/0 '
            '(shared by every worker).'
        )


def check_public_address(config) -> None:
    """Production links go to a public host, over https, unless a local
    trial says otherwise with INSECURE_LOCAL_PRODUCTION=true."""
    name = config.get('SERVER_NAME')
    if not name:
        raise ConfigError(
            'SERVER_NAME is not set: it is the public host (e.g. '
            'microblog.example.com) used for the links in emails. Set it, and '
            'PREFERRED_URL_SCHEME=https, in the environment.'
        )
    if config.get('INSECURE_LOCAL_PRODUCTION'):
        return
    if is_loopback(hostname(name)):
        raise ConfigError(
            f'SERVER_NAME={name} is a local address, so links in emails would '
            'point there and real visitors would get 400: set the public host '
            '(e.g. microblog.example.com), or INSECURE_LOCAL_PRODUCTION=true '
            'for a trial on this machine.'
        )
    if config['PREFERRED_URL_SCHEME'] != 'https':
        raise ConfigError(
            'PREFERRED_URL_SCHEME is not https, so emailed links and cookies '
            'would travel unencrypted: serve over TLS and set '
            'PREFERRED_URL_SCHEME=https, or INSECURE_LOCAL_PRODUCTION=true for '
            'a trial on this machine.'
        )


def hostname(server_name: str) -> str:
    """`example.com:8000` -> `example.com`; `[::1]:5000` -> `::1`."""
    return urlsplit(f'//{server_name}').hostname or server_name


def is_loopback(host: str) -> bool:
    host = host.lower().rstrip('.')
    if host in LOOPBACK_NAMES or host.endswith('.localhost'):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def redact_url(url: str) -> str:
    """The URL with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rpartition('@')
    user = netloc[0].partition(':')[0]
    return parts._replace(netloc=f'{user}:***@{netloc[2]}').geturl()


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


def exit_on_config_error(error: ConfigError) -> NoReturn:
    """What `flask` commands and gunicorn print for a start-up mistake: one
    line, then exit status 1."""
    print(f'Error: {error}', file=sys.stderr, flush=True)
    raise SystemExit(1)


def warn_if_exposed(app: Flask) -> None:
    """A development server reachable by others is a mistake worth a shout:
    weak keys pass, no host check runs, email goes to the console."""
    if app.config['APP_ENV'] != 'development' or app.debug:
        return
    context = click.get_current_context(silent=True)
    if context is None or context.info_name != 'run':
        return
    host = context.params.get('host') or '127.0.0.1'
    # 0.0.0.0 and :: listen on every interface: reachable, not loopback.
    if not is_loopback(host) or host.strip('[]') in ('0.0.0.0', '::'):
        app.logger.warning(DEVELOPMENT_EXPOSED, host)


DEVELOPMENT_EXPOSED = (
    'WARNING: APP_ENV=development on %s, reachable from other machines: '
    'any SECRET_KEY passes, hosts are not checked and email goes to the '
    'console. For production set APP_ENV=production (and see the README).'
)


def configure_proxies(app: Flask) -> None:
    hops = app.config.get('PROXY_FIX') or 0
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
