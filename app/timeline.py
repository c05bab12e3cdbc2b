"""The list pages: home timeline, explore and profile, one page at a time.

Pages are read from indexes and never counted: each fetches one row more
than it shows to know whether there is a next page. The home timeline reads
only each followed author's newest posts (the "window" a page reaches) and
merges them: UNION ALL on SQLite, LATERAL on PostgreSQL. Its cost depends
on the page and on how many users are followed, never on the total number
of posts.
"""

import functools
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Post, User, avatar_url_maker, followers
from app.urls import url_maker

# SQLite caps a compound SELECT at 500 terms: the timeline merges up to this.
MERGE_LIMIT = 400
# SQLite: timeline pages reaching this deep first look among the newest
# WALK_SCAN posts per post wanted (an index-only scan), then merge each
# author's newest.
WALK_WINDOW = 200
WALK_SCAN = 100


@dataclass(slots=True)
class Card:
    """What a list page shows of a post, ready to print: only the columns
    it needs, with URLs and times prepared outside the template loop."""

    id: int
    body: str
    timestamp: datetime
    author: str
    author_url: str
    avatar_url: str
    iso_time: str
    utc_time: str


def cards(rows) -> list[Card]:
    """Cards from (id, body, timestamp, username, email) rows."""
    profile = url_maker('main.user', 'username')
    avatar = avatar_url_maker(70)
    made = []
    for id, body, stamp, name, email in rows:
        iso = stamp.isoformat()  # 2026-11-25T08:00:00.123456+00:00
        utc = f'{iso[:10]} {iso[11:16]} UTC'  # as strftime, a tenth the cost
        made.append(Card(id, body, stamp, name, profile(name), avatar(email), iso, utc))
    return made


@dataclass
class Page:
    items: list[Card]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None


def home_page(user: User, page: int, per_page: int) -> Page:
    """Page `page` of `user`'s timeline: own and followed users' posts."""
    window = max(1, page) * per_page + 1  # how deep this page reaches
    if db.engine.dialect.name != 'postgresql' and window <= WALK_WINDOW:
        # Usually the newest posts of everyone hold this page: look there
        # first, and only if they fall short read each author's newest.
        walk = _RECENT_WALK.bindparams(
            me=user.id, window=window, scan=window * WALK_SCAN
        )
        found = paginate_posts(Post.listing().where(Post.id.in_(walk)), page, per_page)
        if found.has_next:  # the walk reached this page's whole window
            return found
    return paginate_posts(timeline_query(user, window), page, per_page)


def explore_page(page: int, per_page: int) -> Page:
    return paginate_posts(Post.listing(), page, per_page)


def profile_page(user: User, page: int, per_page: int) -> Page:
    return paginate_posts(user.user_posts(), page, per_page)


def paginate_posts(query: sa.Select, page: int, per_page: int) -> Page:
    """One page of cards from a `Post.listing()`-shaped query.

    The page's ids are found first, from indexes alone (a deep OFFSET skips
    index entries, not joined rows); then the columns the page shows, its
    authors' included, are read in the same statement.
    """
    page = max(1, page)
    ids = (
        query.with_only_columns(Post.id)
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    )
    rows = db.session.execute(
        sa.select(Post.id, Post.body, Post.timestamp, User.username, User.email)
        .join(Post.author)
        .where(Post.id.in_(ids))
        .order_by(Post.timestamp.desc(), Post.id.desc())
    ).all()
    return Page(cards(rows[:per_page]), page, per_page, len(rows) > per_page)


def timeline_query(user: User, window: int) -> sa.Select:
    """`user.following_posts()`, reading only each author's newest `window`."""
    if db.engine.dialect.name == 'postgresql':
        return Post.listing().where(Post.id.in_(_newest_lateral(user, window)))
    authors = [user.id, *user.followed_ids(limit=MERGE_LIMIT)]
    if len(authors) > MERGE_LIMIT:
        # Past SQLite's compound-select cap. Following this many people, a
        # page is found quickly by walking all posts newest first (SQLite
        # would otherwise sort every followed author's posts).
        walk = _WALK.bindparams(me=user.id, window=window)
        return Post.listing().where(Post.id.in_(walk))
    params = {f'a{i}': author for i, author in enumerate(authors)}
    merged = _union_template(len(authors)).bindparams(window=window, **params)
    return Post.listing().where(Post.id.in_(merged))


def _newest_lateral(user: User, window: int) -> sa.Select:
    """PostgreSQL: each author's newest posts with LATERAL, in one statement."""
    authors = sa.union_all(
        sa.select(followers.c.followed_id.label('uid')).where(
            followers.c.follower_id == user.id
        ),
        sa.select(sa.literal(user.id).label('uid')),
    ).subquery('authors')
    newest = (
        sa.select(Post.id, Post.timestamp)
        .where(Post.user_id == authors.c.uid)
        .order_by(Post.timestamp.desc(), Post.id.desc())
        .limit(window)
        .lateral('newest')
    )
    return (
        sa.select(newest.c.id)
        .select_from(authors)
        .join(newest, sa.true())
        .order_by(newest.c.timestamp.desc(), newest.c.id.desc())
        .limit(window)
    )


# SQLite walks of all posts newest first, on the (timestamp, id, user_id)
# index alone, keeping the user's and followed users' posts.
_MINE = (
    'user_id = :me OR user_id IN '
    '(SELECT followed_id FROM followers WHERE follower_id = :me)'
)
_WALK = sa.text(
    f'SELECT id FROM post INDEXED BY ix_post_timeline WHERE {_MINE} '
    'ORDER BY timestamp DESC, id DESC LIMIT :window'
).columns(id=sa.Integer)
_RECENT_WALK = sa.text(  # the same, stopping at the :scan-th newest post
    'SELECT id FROM post INDEXED BY ix_post_timeline WHERE timestamp >= '
    '(SELECT timestamp FROM post ORDER BY timestamp DESC, id DESC '
    f'LIMIT 1 OFFSET :scan) AND ({_MINE}) '
    'ORDER BY timestamp DESC, id DESC LIMIT :window'
).columns(id=sa.Integer)


@functools.lru_cache(maxsize=128)
def _union_template(n: int) -> sa.TextClause:
    """SQLite: the merge for n authors, each read from the covering
    (user_id, timestamp, id) index, as SQL text (building it from n Core
    subqueries would cost more than running it)."""
    part = (
        'SELECT * FROM (SELECT id, timestamp FROM post WHERE user_id = :a{0} '
        'ORDER BY timestamp DESC, id DESC LIMIT :window)'
    )
    parts = ' UNION ALL '.join(part.format(i) for i in range(n))
    sql = f'SELECT id FROM ({parts}) ORDER BY timestamp DESC, id DESC LIMIT :window'
    return sa.text(sql).columns(id=sa.Integer)
