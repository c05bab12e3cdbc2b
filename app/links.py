"""Emailed links: the token leaves the address bar at once.

Opening `/<link>/<token>` stores the token in the session and redirects to
`/<link>/confirm`, a page whose URL holds no token and whose button (a POST
with CSRF) does the change. So the token is not in the history, not in a
Referer, and a mail scanner that fetches links changes nothing.

Every emailed link is declared with `route()`, the one list the rest is
derived from: the no-store/no-referrer headers of its pages and the
access-log redaction (gunicorn.conf.py). The stash in the session cookie is
encrypted (Fernet, a key derived from SECRET_KEY), so the cookie holds no
readable token, and it is dropped once its link has expired.
"""

import base64
import hashlib
import json
import re
from functools import cache
from time import time

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    request,
    session,
    url_for,
)

LANDING = 'confirm'  # the token-free path segment
PREFIX = 'link:'
# A stash outlives an expired link by this much, so its page can say why
# the link no longer works; never longer than the longest link plus that.
GRACE = 120
LONGEST_LINK = 7 * 24 * 3600

# endpoint -> (URL prefix, landing segment), filled by route()
EMAILED: dict[str, tuple[str, str]] = {}


def route(bp: Blueprint, prefix: str, landing: str = LANDING):
    """Declare the view of an emailed link at `<prefix><token>`."""

    def decorator(view):
        EMAILED[f'{bp.name}.{view.__name__}'] = (prefix, landing)
        token_pattern.cache_clear()
        return bp.route(f'{prefix}<token>', methods=['GET', 'POST'])(view)

    return decorator


@cache
def token_pattern() -> re.Pattern:
    """Matches the token of every declared link (not its landing). With no
    link declared (the app not loaded) it matches every word: a log that
    says too little, never a token."""
    alternatives = [
        rf'{re.escape(prefix)}(?!{re.escape(landing)}(?=[\s?#"/]|$))'
        for prefix, landing in sorted(EMAILED.values())
    ]
    return re.compile(rf'((?:{"|".join(alternatives)}))[^\s?#"/]+')


def redact(text: str) -> str:
    """`/revert_email/eyJ...` -> `/revert_email/[redacted]`."""
    return token_pattern().sub(r'\1[redacted]', text)


def _fernet(app: Flask) -> MultiFernet:
    keys = (app.secret_key, *(app.config.get('SECRET_KEY_FALLBACKS') or ()))
    cached = app.extensions.get('link_stash')
    if cached is None or cached[0] != keys:
        derived = [
            hashlib.sha256(b'microblog link stash\0' + str(key).encode()).digest()
            for key in keys
        ]
        fernets = [Fernet(base64.urlsafe_b64encode(k)) for k in derived]
        cached = keys, MultiFernet(fernets)
        app.extensions['link_stash'] = cached
    return cached[1]


def _link_expiry(token: str) -> float:
    """When the link stops working (its `exp`, unverified: only for the stash)."""
    try:
        exp = jwt.decode(token, options={'verify_signature': False}).get('exp')
    except jwt.InvalidTokenError:
        exp = None
    return float(exp) if isinstance(exp, int | float) else time()


def land(endpoint: str, token: str) -> Response:
    """Stash the token for `endpoint` and send the browser to its landing."""
    forget_expired()
    now = time()
    until = min(max(_link_expiry(token), now) + GRACE, now + LONGEST_LINK + GRACE)
    sealed = _fernet(current_app).encrypt(json.dumps([token, until]).encode())
    session[PREFIX + endpoint] = sealed.decode()
    return redirect(url_for(endpoint, token=EMAILED[endpoint][1]))


def _open(sealed) -> tuple[str, float]:
    try:
        token, until = json.loads(_fernet(current_app).decrypt(sealed.encode()))
    except (InvalidToken, ValueError, TypeError, AttributeError):
        return '', 0.0
    return (token, until) if isinstance(token, str) else ('', 0.0)


def stashed(endpoint: str) -> str:
    """The token stashed for `endpoint`, or '' (none, or its link expired)."""
    token, until = _open(session.get(PREFIX + endpoint))
    if not token or time() > until:
        forget(endpoint)
        return ''
    return token


def forget(endpoint: str | None = None) -> None:
    """Drop one stashed token, or all of them (the signed-in identity changed)."""
    for key in [k for k in session if k.startswith(PREFIX)]:
        if endpoint is None or key == PREFIX + endpoint:
            session.pop(key)


def forget_expired() -> None:
    # Iterating does not mark the session accessed (no Vary: Cookie).
    for key in [k for k in session if k.startswith(PREFIX)]:
        if time() > _open(session[key])[1]:
            session.pop(key)


def init_app(app: Flask) -> None:
    # A stash leaves the cookie on the first request after its link expired.
    app.before_request(forget_expired)

    @app.after_request
    def _no_token_leaks(response: Response) -> Response:
        link = EMAILED.get(request.endpoint)
        if link is not None:
            # The landing too: a page reached from a link is nobody's cache.
            response.headers['Referrer-Policy'] = 'no-referrer'
            response.headers['Cache-Control'] = 'no-store'
        return response
