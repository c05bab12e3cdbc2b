"""Emailed links: the token leaves the address bar at once.

Opening `/<link>/<token>` stores the token in the session and redirects to
`/<link>/confirm`, a page whose URL holds no token and whose button (a POST
with CSRF) does the change. So the token is not in the history, not in a
Referer, and a mail scanner that fetches links changes nothing.
"""

from flask import Flask, Response, redirect, request, session, url_for

LANDING = 'confirm'  # the token-free path segment
LANDINGS = {LANDING, 'set-password'}  # the reset link keeps its historic name
PREFIX = 'link:'


def land(endpoint: str, token: str, landing: str = LANDING) -> Response:
    """Stash the token for `endpoint` and send the browser to its landing."""
    session[PREFIX + endpoint] = token
    return redirect(url_for(endpoint, token=landing))


def stashed(endpoint: str) -> str:
    return session.get(PREFIX + endpoint, '')


def forget(endpoint: str | None = None) -> None:
    """Drop one stashed token, or all of them (the signed-in identity changed)."""
    for key in [k for k in session if k.startswith(PREFIX)]:
        if endpoint is None or key == PREFIX + endpoint:
            session.pop(key)


def init_app(app: Flask, endpoints: set[str]) -> None:
    @app.after_request
    def _no_token_leaks(response: Response) -> Response:
        if request.endpoint in endpoints:
            if (request.view_args or {}).get('token') not in LANDINGS:
                response.headers['Referrer-Policy'] = 'no-referrer'
            response.headers['Cache-Control'] = 'no-store'
        return response
