"""URLs for list pages, which need one per post: `url_for` once, then fill in."""

import re
from collections.abc import Callable
from urllib.parse import quote

from flask import url_for

_MARK = '@@'  # kept as is by URL quoting, so it can be found again
_SAFE = "!$&'()*+,/:;=@"  # what Werkzeug's default converter leaves unquoted
_UNRESERVED = re.compile(r'[A-Za-z0-9_.~-]*')  # never quoted: skip quote()


def url_maker(endpoint: str, field: str, **values) -> Callable[[str], str]:
    """A function from `field`'s value to `url_for(endpoint, field=value,
    **values)`, for a string in a path segment or query value."""
    head, _, tail = url_for(endpoint, **{field: _MARK}, **values).rpartition(_MARK)

    def make(value: str) -> str:
        if not _UNRESERVED.fullmatch(value):
            value = quote(value, safe=_SAFE)
        return f'{head}{value}{tail}'

    return make
