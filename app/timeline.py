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
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db
from app.models import Post, User, followers

# SQLite caps a compound SELECT at 500 terms: the timeline merges up to this.
MERGE_LIMIT = 400


@dataclass
class Page:
    items: list[Any]
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
    return paginate_posts(timeline_query(user, window), page, per_page)


def explore_page(page: int, per_page: int) -> Page:
    return paginate_posts(Post.listing(), page, per_page)


def profile_page(user: User, page: int, per_page: int) -> Page:
    return paginate_posts(user.user_posts(), page, per_page)


def paginate_posts(query: sa.Select, page: int, per_page: int) -> Page:
    """One page of a `Post.listing()`-shaped query, authors included.

    The page's ids are found first, from indexes alone (a deep OFFSET skips
    index entries, not joined rows); then those posts and their authors are
    loaded in the same statement.
    """
    page = max(1, page)
    ids = (
        query.with_only_columns(Post.id)
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    )
    rows = list(
        db.session.scalars(
            sa.select(Post)
            .options(so.joinedload(Post.author))
            .where(Post.id.in_(ids))
            .order_by(Post.timestamp.desc(), Post.id.desc())
        )
    )
    return Page(rows[:per_page], page, per_page, len(rows) > per_page)


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


_WALK = sa.text(
    'SELECT post.id FROM post INDEXED BY ix_post_timestamp_id '
    'WHERE post.user_id = :me OR post.user_id IN '
    '(SELECT followed_id FROM followers WHERE follower_id = :me) '
    'ORDER BY post.timestamp DESC, post.id DESC LIMIT :window'
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
