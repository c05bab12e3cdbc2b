"""Pagination without COUNT(*): fetch one extra row to know if there is more."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import db
from app.models import Post


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
