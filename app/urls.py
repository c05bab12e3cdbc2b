"""URLs built once and reused: per post on list pages, per process for
navigation and static files (`url_for` costs about as much as rendering a
post)."""

import functools
import hashlib
import re
from collections.abc import Callable
from urllib.parse import quote

from flask import Flask, current_app, has_request_context, request, url_for
from markupsafe import escape

_MARK = '@@'  # kept as is by URL quoting, so it can be found again
_SAFE = "!$&'()*+,/:;=@"  # what Werkzeug's default converter leaves unquoted
_UNRESERVED = re.compile(r'[A-Za-z0-9_.~-]*')  # never quoted: skip quote()
_HTML_SPECIAL = re.compile(r'[&<>"\']')


def url_maker(endpoint: str, field: str, **values) -> Callable[[str], str]:
    """A function from `field`'s value to `url_for(endpoint, field=value,
    **values)`, for a field in the path (a query value would quote the mark)."""
    marked = fixed_url(endpoint, **{field: _MARK}, **values)
    head, found, tail = marked.rpartition(_MARK)
    if not found:
        raise ValueError(f'{field} is not a path segment of {endpoint}')

    def make(value: str) -> str:
        if not _UNRESERVED.fullmatch(value):
            value = quote(value, safe=_SAFE)
        return f'{head}{value}{tail}'

    return make


class FixedUrls:
    """`url_for` for URLs that never change while the app runs (navigation,
    static files), each built once: one per app and script root."""

    __slots__ = ('_built',)

    def __init__(self) -> None:
        self._built: dict[tuple, str] = {}

    def __call__(self, endpoint: str, **values) -> str:
        key = (endpoint, *values.items())
        url = self._built.get(key)
        if url is None:
            url = self._built[key] = url_for(endpoint, **values)
        return url


# Script roots whose FixedUrls are kept. The root comes from the server
# (SCRIPT_NAME, which some servers take from a request header), so a client
# could make any number of them: past this many, a request's FixedUrls
# lives only as long as the request.
MAX_SCRIPT_ROOTS = 8


def fixed_urls() -> FixedUrls:
    """This app's and script root's FixedUrls (outside a request, url_for's
    absolute URLs). Templates get it bound, as `fixed_url` (see init_app):
    each of its URLs is then one dict lookup, without looking up the app
    and request again."""
    per_root = current_app.extensions.setdefault('fixed_urls', {})
    root = request.script_root if has_request_context() else None
    urls = per_root.get(root)
    if urls is None:
        urls = FixedUrls()
        if len(per_root) < MAX_SCRIPT_ROOTS:
            per_root[root] = urls
    return urls


def fixed_url(endpoint: str, **values) -> str:
    """`url_for(endpoint, **values)` for a URL that never changes while the
    app runs, built once (see FixedUrls)."""
    return fixed_urls()(endpoint, **values)


def init_app(app: Flask) -> None:
    """One name in every template for the URLs that never change:
    `fixed_url('main.index')`, `fixed_url('static', filename=...)`; URLs
    that depend on the page (a profile, a follow button) use url_for."""

    @app.context_processor
    def _fixed_url() -> dict:
        return {'fixed_url': fixed_urls()}


def html_attribute(text: str) -> str:
    """`text` escaped for an HTML attribute (most URLs need nothing)."""
    return str(escape(text)) if _HTML_SPECIAL.search(text) else text


def avatar_url_maker(size: int, html: bool = False):
    """A function from an account's (avatar seed, email address) to its
    avatar's URL at `size` pixels (list pages make many: the URL is built
    once, then filled in), escaped for an HTML attribute if `html`.

    By default the avatar is a local identicon drawn from the account's
    random seed, which says nothing about the address. With GRAVATAR on,
    the URL carries the MD5 of the address: anyone can test a guessed
    address against it, and Gravatar sees every page view."""
    if current_app.config.get('GRAVATAR', False):
        gravatar = f'https://www.gravatar.com/avatar/{{}}?d=identicon&s={size}'
        if html:
            gravatar = html_attribute(gravatar)  # a hex digest needs nothing

        def url(seed: str, email: str) -> str:
            return gravatar.format(email_digest(email))

        return url
    marked = fixed_url('main.avatar', seed=_MARK, size=size)
    head, _, tail = marked.partition(_MARK)
    if html:
        head, tail = html_attribute(head), html_attribute(tail)
    # Seeds are hex digits (identity.new_avatar_seed, migration 0006): nothing
    # to quote or escape, so a URL is one f-string (a third of the cost).
    return lambda seed, email: f'{head}{seed}{tail}'


@functools.lru_cache(maxsize=4096)
def email_digest(email: str) -> str:
    """The MD5 hex digest Gravatar keys on (remembered: list pages show
    the same authors again and again)."""
    return hashlib.md5(email.encode('utf-8')).hexdigest()
