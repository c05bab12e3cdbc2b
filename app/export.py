"""Download your data: one ZIP of everything the account holds, streamed.

The archive is written as it is sent: zipfile writes each member into a
sink the response drains (a ZIP needs no seeking when each member is
followed by its data descriptor), and posts are read in keyset pages of
POSTS_PER_READ rows, so memory stays the same for 100 or 100,000 posts.
"""

import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import sqlalchemy as sa
from flask import current_app

from app import security_log
from app.agents import describe_agent
from app.dbtypes import utcnow
from app.extensions import db
from app.i18n import gettext, ngettext
from app.mfa.models import Authenticator
from app.models import Post, User, followers
from app.sessions import UserSession, approximate_address

POSTS_PER_READ = 1000
FLUSH_AT = 64 * 1024  # bytes held before they go to the client


def readme(when: str, days: int) -> str:
    """README.txt, for people: in the language of the page that asked."""
    kept = ngettext('%(num)d day', '%(num)d days', days)
    return gettext(
        """\
Your Microblog data, as of %(when)s.

account.json       your profile: username, email address (and whether it is
                   confirmed), about me, when you were last seen, whether
                   two-factor sign-in is on.
posts.json         every post you wrote: its id, text and time (ISO 8601, UTC),
                   newest first.
following.json     the accounts you follow (usernames).
followers.json     the accounts that follow you (usernames).
sessions.json      the browsers that signed in to your account: browser and
                   system, approximate address, when they signed in, were
                   last active and were signed out.
security_log.json  your security log, kept for %(kept)s (sign-ins, changes
                   to your password, address and second factor, downloads,
                   ...), newest first.

Times are in UTC. Passwords, authenticator secrets and recovery codes are
never exported: we keep only what cannot be turned back into them.
""",
        when=when,
        kept=kept,
    )


class _Sink(io.RawIOBase):
    """Where zipfile writes: bytes wait here until the response takes them."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data = b''.join(self.chunks)
        self.chunks, self.size = [], 0
        return data


def filename(user: User) -> str:
    return f'microblog-{user.username}-{utcnow():%Y-%m-%d}.zip'


def content_disposition(user: User) -> str:
    """An ASCII name for old clients, the real one (RFC 6266) for the rest."""
    name = filename(user)
    plain = name.encode('ascii', 'replace').decode().replace('?', '_')
    return f'attachment; filename="{plain}"; filename*=UTF-8\'\'{quote(name)}'


def archive(user: User) -> Iterator[bytes]:
    """The ZIP, piece by piece; run inside the request (stream_with_context)."""
    sink = _Sink()
    members = _members(user)
    with zipfile.ZipFile(sink, 'w', zipfile.ZIP_DEFLATED) as zipped:
        for name, pieces in members:
            with zipped.open(name, 'w') as member:
                for piece in pieces:
                    member.write(piece.encode())
                    if sink.size >= FLUSH_AT:
                        yield sink.take()
            yield sink.take()
    yield sink.take()


def _members(user: User) -> list[tuple[str, Iterable[str]]]:
    days = current_app.config['SECURITY_LOG_DAYS']
    return [
        ('README.txt', [readme(_iso(utcnow()), days)]),
        ('account.json', [_dumps(_account(user))]),
        ('posts.json', _json_array(_posts(user))),
        ('following.json', _json_array(_usernames(user, following=True))),
        ('followers.json', _json_array(_usernames(user, following=False))),
        ('sessions.json', _json_array(_sessions(user))),
        ('security_log.json', _json_array(_events(user))),
    ]


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC, to the second: 2026-01-31T09:30:00Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec='seconds').replace('+00:00', 'Z')


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _json_array(items: Iterable[dict]) -> Iterator[str]:
    """A JSON array written one item at a time."""
    yield '['
    separator = '\n  '
    for item in items:
        yield separator + json.dumps(item, ensure_ascii=False)
        separator = ',\n  '
    yield '\n]\n'


def _account(user: User) -> dict:
    return {
        'username': user.username,
        'email': user.email,
        'email_confirmed': user.email_confirmed,
        'about_me': user.about_me,
        'last_seen': _iso(user.last_seen),
        'two_factor': Authenticator.enabled_for(user),
        'exported_at': _iso(utcnow()),
    }


def _posts(user: User) -> Iterator[dict]:
    """Newest first, in keyset pages: each page starts after the last row
    of the one before, so no page is slower than the first."""
    stamp, columns = Post.timestamp, (Post.id, Post.body, Post.timestamp)
    query = (
        sa.select(*columns)
        .where(Post.user_id == user.id)
        .order_by(stamp.desc(), Post.id.desc())
        .limit(POSTS_PER_READ)
    )
    after = None
    while True:
        page = query
        if after is not None:
            page = query.where(sa.tuple_(stamp, Post.id) < sa.tuple_(*after))
        rows = db.session.execute(page).all()
        for id_, body, timestamp in rows:
            yield {'id': id_, 'body': body, 'timestamp': _iso(timestamp)}
        if len(rows) < POSTS_PER_READ:
            return
        after = (rows[-1].timestamp, rows[-1].id)


def _usernames(user: User, following: bool) -> Iterator[dict]:
    mine, theirs = followers.c.follower_id, followers.c.followed_id
    if not following:
        mine, theirs = theirs, mine
    query = (
        sa.select(User.username)
        .join(followers, theirs == User.id)
        .where(mine == user.id)
        .order_by(User.username_key)
    )
    for username in db.session.scalars(query):
        yield {'username': username}


def _sessions(user: User) -> Iterator[dict]:
    query = (
        sa.select(UserSession)
        .where(UserSession.user_id == user.id)
        .order_by(UserSession.created_at.desc(), UserSession.id.desc())
    )
    for row in db.session.scalars(query):
        browser, system = describe_agent(row.user_agent)
        yield {
            'browser': browser,
            'system': system,
            'address': approximate_address(row.client_address),
            'signed_in': _iso(row.created_at),
            'last_active': _iso(row.last_seen),
            'signed_out': _iso(row.revoked_at),
        }


def _events(user: User) -> Iterator[dict]:
    for event in db.session.scalars(security_log.events_of(user)):
        yield event.as_dict()
