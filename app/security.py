"""Security headers, audit lines and small checks shared by the blueprints."""

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    request,
)
from flask.sessions import SecureCookieSessionInterface

from app.forms import unstorable

GRAVATAR = 'https://www.gravatar.com'


def content_security_policy(gravatar: bool) -> str:
    img = "'self' data:" + (f' {GRAVATAR}' if gravatar else '')
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


# Control characters (C0, DEL, C1) and Unicode line separators.
CONTROL = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029]')


def escape_controls(text: str) -> str:
    """`a\nb` -> `a\\nb`: user text cannot start a new log line."""
    return CONTROL.sub(lambda m: m.group().encode('unicode_escape').decode(), text)


class OneLineFilter(logging.Filter):
    """One event, one line: escape control characters in the message (a
    traceback, added by the formatter, keeps its lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = escape_controls(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once
    per set of keys instead of twice per request (building one serializes
    a test value to JSON)."""

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config['SECRET_KEY_FALLBACKS'] or ()))
        cached = app.extensions.get('session_serializer')
        if cached is None or cached[0] != keys:
            cached = keys, super().get_signing_serializer(app)
            app.extensions['session_serializer'] = cached
        return cached[1]


def init_app(app: Flask) -> None:
    app.session_interface = CookieSessions()
    csp = content_security_policy(app.config.get('GRAVATAR', False))
    if not any(isinstance(f, OneLineFilter) for f in app.logger.filters):
        app.logger.addFilter(OneLineFilter())

    @app.before_request
    def _refuse_unstorable_urls() -> None:
        # No URL naming a NUL byte can name a stored user, post or token.
        if any(unstorable(value) for value in (request.view_args or {}).values()):
            abort(404)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault('Content-Security-Policy', csp)
        headers.setdefault('X-Content-Type-Options', 'nosniff')
        headers.setdefault('X-Frame-Options', 'DENY')
        headers.setdefault('Referrer-Policy', 'same-origin')
        if app.config['PREFERRED_URL_SCHEME'] == 'https' and not app.testing:
            headers.setdefault('Strict-Transport-Security', 'max-age=31536000')
        user = g.get('_login_user')
        if response.mimetype == 'text/html' and user and user.is_authenticated:
            # Back after sign-out, or a shared cache, shows nothing private.
            headers['Cache-Control'] = 'no-store'
            headers.add('Vary', 'Cookie')
        return response


def safe_next_url(target: str | None) -> str | None:
    """`target` if it is certainly a path on this site, else None.

    Browsers read `//host`, `/\\host`, `\\\\host` and paths with tabs or
    newlines stripped as other hosts, so all of those are refused.
    """
    if not target or len(target) > 2000:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch.isspace() for ch in target):
        return None
    if '\\' in target or not target.startswith('/') or target.startswith('//'):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def mask_email(address: str) -> str:
    """`j***@example.com`: enough to correlate, not the address in full."""
    local, _, domain = (address or '').rpartition('@')
    if not local:
        return '***'
    return f'{local[0]}***@{domain}'


def audit(event: str, **fields) -> None:
    """One structured line per security event; never tokens or passwords."""
    record = {
        'event': event,
        'time': datetime.now(UTC).isoformat(timespec='seconds'),
    }
    if has_request_context():
        record['client'] = request.remote_addr
    record.update({k: v for k, v in fields.items() if v is not None})
    current_app.logger.info('audit %s', json.dumps(record, sort_keys=True))


def config_limit(name: str):
    """A rate limit read from the configuration at request time."""
    return lambda: current_app.config[name]
