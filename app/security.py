"""Security headers, audit lines and small checks shared by the blueprints."""

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, has_request_context, request

GRAVATAR = 'https://www.gravatar.com'


def content_security_policy(gravatar: bool) -> str:
    img = "'self' data:" + (f' {GRAVATAR}' if gravatar else '')
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def init_app(app: Flask) -> None:
    csp = content_security_policy(app.config.get('GRAVATAR', True))

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault('Content-Security-Policy', csp)
        headers.setdefault('X-Content-Type-Options', 'nosniff')
        headers.setdefault('X-Frame-Options', 'DENY')
        headers.setdefault('Referrer-Policy', 'same-origin')
        if app.config['PREFERRED_URL_SCHEME'] == 'https' and not app.testing:
            headers.setdefault('Strict-Transport-Security', 'max-age=31536000')
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
